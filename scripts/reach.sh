# Sourced by scripts/run.sh and scripts/test.sh (as root).  The KMS starts
# its HSM child as the unprivileged user lunal-hsm, which must be able to
# reach the built binaries under this checkout: folders above it made 0700
# (a mktemp clone, a private home) would stop it.  Give "others" search
# permission (x only: nothing becomes listable or readable) on each folder
# from the checkout up to / that lacks it, and say so.
luna_make_reachable() {
    local d=$1
    while [ -n "$d" ] && [ "$d" != / ]; do
        if [ -d "$d" ] && [ "$(stat -c %A "$d" | cut -c10)" != x ] &&
           [ "$(stat -c %A "$d" | cut -c10)" != t ]; then
            echo "setup: adding search permission for others on $d (the HSM user must reach the binaries)"
            chmod o+x "$d"
        fi
        d=$(dirname "$d")
    done
}
