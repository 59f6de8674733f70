"""Runs one Swift WSGI server (proxy, object, container or account) with swift.conf read
from a scratch folder instead of /etc/swift, so nothing under /etc is written.

usage: python3 run-server.py SWIFT_DIR CONF_FILE KIND-server
"""
import sys

from swift.common import utils

swift_dir, conf, kind = sys.argv[1], sys.argv[2], sys.argv[3]
utils.set_swift_dir(swift_dir)

from swift.common.wsgi import run_wsgi  # noqa: E402 (after set_swift_dir on purpose)

kw = {'verbose': True}
if kind == 'object-server':
    from swift.obj import server

    kw['global_conf_callback'] = server.global_conf_callback
sys.exit(run_wsgi(conf, kind, **kw))
