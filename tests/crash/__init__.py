"""Crash-kill tests: every named step of a write protocol, killed in a child process (see harness.py)."""
