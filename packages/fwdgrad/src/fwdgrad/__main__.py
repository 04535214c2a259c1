"""Entry point for `python -m fwdgrad`."""

from fwdgrad.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
