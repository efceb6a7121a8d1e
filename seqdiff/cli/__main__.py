import sys

from seqdiff.cli.main import main

sys.exit(main())
