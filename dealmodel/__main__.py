import sys

from dealmodel.cli import main

sys.exit(main())
