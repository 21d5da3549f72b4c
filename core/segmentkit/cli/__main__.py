"""``python -m segmentkit.cli``: the command line (as ``python -m segmentkit``)."""

from segmentkit.cli import main

main()
