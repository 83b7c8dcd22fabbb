/* luna-iam: placeholder main while the service is written. */
int main(void)
{
    return 0;
}
