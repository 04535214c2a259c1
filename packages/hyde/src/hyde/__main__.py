"""Entry point for `python -m hyde`."""

from hyde.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
