/*
 * store_suite.h - the one behavioural suite of luna/store.h, run unchanged
 * against every backend (tests/unit/test_store_sqlite.c,
 * tests/e2e/test_store_pg.c).  The suite owns the tables it creates
 * (items, counter, notes, luna_schema_version) and drops them before each
 * test; it must never depend on anything else in the database.
 */
#ifndef LUNA_STORE_SUITE_H
#define LUNA_STORE_SUITE_H

/*
 * Runs the shared tests as cmocka group `group` against url; url is opened
 * several times (reopen, concurrent handles) so it must name a persistent
 * database, not sqlite::memory:.  Returns the number of failed tests.
 */
int luna_store_suite_run(const char *group, const char *url);

#endif
