"""Entry point for `python -m oialr`."""

from oialr.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
