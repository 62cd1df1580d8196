#!/bin/bash
# process-one.sh FILE: one task. Counts FILE's lines into FILE.lines, written under a
# temporary name and renamed, so that a task killed halfway leaves no partial result.
set -euo pipefail
file=$1
wc -l < "$file" > "$file.lines.tmp.$$"
mv "$file.lines.tmp.$$" "$file.lines"
