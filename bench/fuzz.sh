#!/bin/sh
# The gate's fuzz harness (validator/examples/fuzz.rs): mutated fixtures and examples through
# the whole gate. Usage: bench/fuzz.sh [--iterations N] [--seed S] [--only I]
exec cargo run --release -p tally-validator --example fuzz -- "$@"
