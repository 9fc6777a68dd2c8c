#!/usr/bin/env bash
# Replaced by `scaleml cluster up` (README, "Deploy"): every part supervised, bound to 127.0.0.1.
exec scaleml cluster up "$@"
