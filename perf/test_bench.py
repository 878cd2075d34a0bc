#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Offline checks of perf/bench.py's parsers and arithmetic, on canned
testpmd, vre-switch and OVS output: no DPDK, no root."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

STATS = """testpmd> show port stats all

  ######################## NIC statistics for port 0  ########################
  RX-packets: 1000       RX-missed: 0          RX-bytes:  60000
  RX-errors: 0
  RX-nombuf:  0
  TX-packets: 1032       TX-errors: 0          TX-bytes:  61920

  Throughput (since last show)
  Rx-pps:          500          Rx-bps:       240000
  Tx-pps:          516          Tx-bps:       247680
  ############################################################################

  ######################## NIC statistics for port 1  ########################
  RX-packets: 2000       RX-missed: 0          RX-bytes:  120000
  RX-errors: 0
  RX-nombuf:  0
  TX-packets: 7          TX-errors: 0          TX-bytes:  420

  Throughput (since last show)
  Rx-pps:         1000          Rx-bps:       480000
  Tx-pps:            3          Tx-bps:         1680
  ############################################################################
"""


class FakeProc:
    def __init__(self, text):
        self.lines = [(float(i), l) for i, l in enumerate(text.splitlines())]
        self.sent = []

    def drain(self):
        pass

    def send(self, cmd):
        self.sent.append(cmd)

    def expect(self, regex, timeout):
        if not self.lines:
            raise bench.BenchError('no more output')
        return [self.lines.pop(0)]


def fake_gen(text, topo='xconnect', nports=2):
    g = object.__new__(bench.Generator)
    g.proc = FakeProc(text)
    g.topo, g.expect_ports, g.nports = topo, nports, nports
    return g


class TestSample(unittest.TestCase):
    def test_reads_every_port(self):
        g = fake_gen(STATS)
        t, ports = g.sample()
        self.assertEqual(g.proc.sent, ['show port stats all'])
        self.assertEqual(sorted(ports), [0, 1])
        self.assertEqual(ports[0]['rx'], 1000)
        self.assertEqual(ports[0]['rx_bytes'], 60000)
        self.assertEqual(ports[0]['tx'], 1032)
        self.assertEqual(ports[1]['rx'], 2000)
        self.assertEqual(ports[1]['rx_pps'], 1000)
        self.assertEqual(t, 2.0)  # the line that opened port 0's block

    def test_missing_port_is_an_error(self):
        g = fake_gen(STATS.split('NIC statistics for port 1')[0], nports=2)
        with self.assertRaises(bench.BenchError):
            g.sample()


class TestVreCycles(unittest.TestCase):
    def test_totals_give_window_delta(self):
        lines = ['stats worker 0 cpu 1: packets 1000 busy-cycles 500000 '
                 'cycles/pkt 500.0 busy-ms 1',
                 'stats port 0: rx-pkts 5',
                 'stats worker 0 cpu 1: packets 3000 busy-cycles 700000 '
                 'cycles/pkt 233.3 busy-ms 1']
        self.assertAlmostEqual(bench.parse_vre_cycles(lines), 100.0)

    def test_two_workers_sum(self):
        lines = ['worker 0 cpu 1: packets 0 busy-cycles 0',
                 'worker 1 cpu 2: packets 0 busy-cycles 0',
                 'worker 0 cpu 1: packets 100 busy-cycles 1000',
                 'worker 1 cpu 2: packets 300 busy-cycles 9000']
        self.assertAlmostEqual(bench.parse_vre_cycles(lines), 25.0)

    def test_plain_values_median(self):
        self.assertEqual(bench.parse_vre_cycles(
            ['cycles/pkt 120', 'cyc/pkt: 130', 'cycles_per_pkt=400']), 130.0)

    def test_nothing(self):
        self.assertIsNone(bench.parse_vre_cycles(['rx 1 Mpps']))


def row(backend, pair, mpps, flagged=False, size=64):
    return {'backend': backend, 'ring': 'split', 'topo': 'xconnect',
            'size': size, 'pair': pair, 'mpps': mpps, 'cycles': 100.0,
            'flagged': flagged}


class TestSummary(unittest.TestCase):
    def test_medians_and_ratios(self):
        rows = [row('vre', 0, 4.0), row('dpdk', 0, 2.0),
                row('vre', 1, 6.0), row('dpdk', 1, 2.0),
                row('vre', 2, 3.0), row('dpdk', 2, 3.0)]
        s = {r['backend']: r for r in bench.summarize(rows, ['vre', 'dpdk'])}
        self.assertEqual(s['vre']['median_mpps'], 4.0)
        self.assertEqual(s['dpdk']['median_mpps'], 2.0)
        self.assertEqual(s['dpdk']['ratio_vre'], 2.0)
        # per pair 2.0, 3.0, 1.0
        self.assertEqual(s['dpdk']['pair_ratio_vre'], 2.0)
        self.assertIsNone(s['vre']['ratio_vre'])

    def test_flagged_and_failed_are_left_out(self):
        rows = [row('vre', 0, 4.0), row('dpdk', 0, 2.0),
                row('vre', 1, 0.01, flagged=True), row('dpdk', 1, 2.0),
                row('vre', 2, None), row('dpdk', 2, 2.0)]
        s = {r['backend']: r for r in bench.summarize(rows, ['vre', 'dpdk'])}
        self.assertEqual(s['vre']['n'], 1)
        self.assertEqual(s['vre']['bad'], 2)
        self.assertEqual(s['vre']['median_mpps'], 4.0)
        self.assertEqual(s['dpdk']['pair_ratio_vre'], 2.0)

    def test_backend_with_only_failures_shows_up(self):
        rows = [row('vre', 0, None), row('dpdk', 0, 2.0)]
        s = {r['backend']: r for r in bench.summarize(rows, ['vre', 'dpdk'])}
        self.assertEqual(s['vre']['n'], 0)
        self.assertIsNone(s['dpdk']['ratio_vre'])


class TestPlan(unittest.TestCase):
    def test_alternates_and_counts(self):
        cfg = bench.parse_args(['--topos', 'loopback,learn', '--rings',
                                'split', '--pairs', '3', '--pairs-other', '2'])
        bs = [bench.VreBackend(cfg), bench.DpdkBackend(cfg),
              bench.OvsBackend(cfg)]
        runs = bench.plan(cfg, bs)
        names = [(t, b.name) for t, _, _, _, _, b in runs]
        self.assertEqual(names[:6], [('loopback', 'vre'), ('loopback', 'dpdk')] * 3)
        self.assertEqual(names[6:], [('learn', 'vre'), ('learn', 'ovs')] * 2)

    def test_vre_cmdline(self):
        cfg = bench.parse_args([])
        argv = bench.vre_cmdline(cfg, 'vre-switch', 'packed', 'oneway',
                                 ['/a', '/b'])
        app = argv[argv.index('--') + 1:]
        self.assertEqual(app[:4], ['--vhost', '/a', '--vhost', '/b'])
        self.assertEqual(app[app.index('--mode') + 1], 'xconnect')
        self.assertEqual(app[app.index('--workers') + 1], '1')


if __name__ == '__main__':
    unittest.main()
