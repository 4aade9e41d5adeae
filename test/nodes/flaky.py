#!/usr/bin/env python3
"""Test-only process that prints one line and exits with code 3 (exercises respawn)."""
print("flaky: starting, about to fail", flush=True)
raise SystemExit(3)
