"""Entry point for `python -m heatlike`."""

from heatlike.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
