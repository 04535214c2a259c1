"""Entry point for `python -m abtrain`."""

from abtrain.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
