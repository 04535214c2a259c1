"""Entry point for `python -m f3`."""

from f3.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
