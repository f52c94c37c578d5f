import sys

from castbench.cli import main

sys.exit(main())
