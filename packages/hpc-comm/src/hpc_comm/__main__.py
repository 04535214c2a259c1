"""``python -m hpc_comm`` runs the hpc-comm command line."""

from hpc_comm.cli import main

raise SystemExit(main())
