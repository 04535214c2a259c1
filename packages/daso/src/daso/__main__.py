"""Entry point for `python -m daso`."""

from daso.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
