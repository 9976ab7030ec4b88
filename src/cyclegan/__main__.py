"""`python -m cyclegan ...`, the form torchrun launches: `torchrun --nproc_per_node 4 -m cyclegan train ...`."""

from .cli import main

raise SystemExit(main())
