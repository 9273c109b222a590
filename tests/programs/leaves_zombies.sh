#!/bin/sh
# Starts three short jobs, then replaces itself with a program that never waits:
# the jobs end as zombies of that program, which exits holding them.
sleep 0.05 &
sleep 0.05 &
sleep 0.05 &
exec sleep 0.5
