#!/bin/sh
# `make help` names every target of the Makefile: each one on the .PHONY line
# and every other rule, a line of its own starting `make TARGET` (`all` may be
# named in another target's line). Run by `make lint`, so a target added
# without its help line fails CI.
set -eu
cd "$(dirname "$0")/.."
help=$(${MAKE:-make} --no-print-directory help)
targets=$({
  sed -n 's/^\.PHONY:\(.*\)/\1/p' Makefile | tr ' ' '\n'
  sed -n 's/^\([a-z][a-z0-9_-]*\):\([^=].*\)\{0,1\}$/\1/p' Makefile
} | grep -v '^$' | sort -u)
missing=
for t in $targets; do
  if [ "$t" = all ]; then
    printf '%s\n' "$help" | grep -Eq '(^|[ ,(])make all([ ,)]|$)' && continue
  else
    printf '%s\n' "$help" | grep -Eq "^make $t( |\$)" && continue
  fi
  missing="$missing $t"
done
if [ -n "$missing" ]; then
  echo "make help does not list:$missing (add a line to the help target)" >&2
  exit 1
fi
echo "make help lists all $(printf '%s\n' $targets | wc -l) targets"
