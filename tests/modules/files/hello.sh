#!/bin/sh
echo "script args: $*"
echo "cwd has $(ls -A | wc -l) entries"
