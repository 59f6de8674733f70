"""Builds the object, container and account rings of a one-device Swift on loopback, in
one Python process (swift-ring-builder would start Python six times).

usage: python3 make-rings.py SWIFT_ETC_DIR object:PORT container:PORT account:PORT

The ring files carry the storage ports; an existing ring built for another port is an
error (use a fresh folder).
"""
import os
import sys

from swift.common.ring import RingBuilder

etc = sys.argv[1]
for spec in sys.argv[2:]:
    name, port = spec.split(':')
    port = int(port)
    builder_path = os.path.join(etc, name + '.builder')
    ring_path = os.path.join(etc, name + '.ring.gz')
    if os.path.exists(ring_path) and os.path.exists(builder_path):
        ports = {d['port'] for d in RingBuilder.load(builder_path).devs if d}
        if ports != {port}:
            sys.exit('%s was built for port(s) %s, not %d: use a fresh SWIFT_DIR'
                     % (ring_path, sorted(ports), port))
        continue
    builder = RingBuilder(6, 1, 1)
    builder.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port,
                     'device': 'd1', 'weight': 100, 'meta': ''})
    builder.rebalance()
    builder.save(builder_path)
    builder.get_ring().save(ring_path)
