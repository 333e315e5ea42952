"""``python -m devdb start|stop|status|url|psql``: the embedded cluster's command line."""

import sys

from devdb import main

sys.exit(main())
