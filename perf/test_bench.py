#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Offline checks of perf/bench.py's parsers and arithmetic, on canned
testpmd, vre-switch and OVS output: no DPDK, no root."""

import os
import re
import sys
import tempfile
import types
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
        self.p = types.SimpleNamespace(pid=os.getpid())  # a readable /proc

    def drain(self):
        pass

    def send(self, cmd):
        self.sent.append(cmd)

    def expect(self, regex, timeout):
        """Like Proc.expect: lines up to and including the first match."""
        got = []
        while self.lines:
            got.append(self.lines.pop(0))
            if re.search(regex, got[-1][1]):
                return got
        raise bench.BenchError('no more output')


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


# testpmd 22.11 (this machine's dpdk-testpmd), `show fwd stats all` with
# --record-core-cycles, io forwarding; then the sentinel command's answer.
FWD = """testpmd> show fwd stats all

  ---------------------- Forward statistics for port 0  ----------------------
  RX-packets: 2741120        RX-dropped: 0             RX-total: 2741120
  TX-packets: 2741088        TX-dropped: 0             TX-total: 2741088
  ----------------------------------------------------------------------------

  ---------------------- Forward statistics for port 1  ----------------------
  RX-packets: 2741536        RX-dropped: 0             RX-total: 2741536
  TX-packets: 2741568        TX-dropped: 0             TX-total: 2741568
  ----------------------------------------------------------------------------

  +++++++++++++++ Accumulated forward statistics for all ports+++++++++++++++
  RX-packets: 5482656        RX-dropped: 0             RX-total: 5482656
  TX-packets: 5482656        TX-dropped: 0             TX-total: 5482656
  ++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++

  CPU cycles/packet=78.66 (total cycles=431283278 / total io packets=5482656) at 2100 MHz Clock
testpmd> show port summary all
Number of available ports: 2
"""


def fwd(cycles, rx):
    return {'cycles': cycles, 'pkts': None, 'mhz': None, 'rx': rx}


class TestGenCycles(unittest.TestCase):
    def test_parse_fwd_stats(self):
        f = bench.parse_fwd_stats(FWD.splitlines())
        self.assertEqual(f['cycles'], 431283278)
        self.assertEqual(f['pkts'], 5482656)
        self.assertEqual(f['mhz'], 2100)
        # the accumulated block is not a port
        self.assertEqual(f['rx'], {0: 2741120, 1: 2741536})

    def test_mac_mode_and_no_cycles_line(self):
        f = bench.parse_fwd_stats(
            ['CPU cycles/packet=10.00 (total cycles=100 / total mac '
             'packets=10) at 2100 MHz Clock'])
        self.assertEqual((f['cycles'], f['pkts']), (100, 10))
        self.assertIsNone(bench.parse_fwd_stats(['RX-packets: 5'])['cycles'])

    def test_fwd_totals_sends_a_sentinel(self):
        g = fake_gen(FWD)
        f = g.fwd_totals()
        self.assertEqual(g.proc.sent, ['show fwd stats all',
                                       'show port summary all'])
        self.assertEqual(f['cycles'], 431283278)
        self.assertIsInstance(f['syscw'], int)  # this process's writes

    def test_writes_per_kpkt(self):
        a = dict(fwd(0, {0: 1000, 1: 1000}), syscw=10)
        b = dict(fwd(0, {0: 33000, 1: 33000}), syscw=2010)
        # 2000 kicks for 64000 packets: one per 32
        self.assertAlmostEqual(bench.gen_writes_per_kpkt(a, b, [0, 1]), 31.25)
        self.assertIsNone(bench.gen_writes_per_kpkt(dict(a, syscw=None), b,
                                                    [0, 1]))
        self.assertIsNone(bench.gen_writes_per_kpkt(a, a, [0, 1]))
        self.assertIsNone(bench.proc_syscw(2 ** 30))  # no such process

    def test_window_delta_over_backend_ports(self):
        a = fwd(1000, {0: 100, 1: 100, 2: 500})
        b = fwd(31000, {0: 200, 1: 200, 2: 900})
        self.assertAlmostEqual(bench.gen_cycles_per_pkt(a, b, [0, 1]), 150.0)
        # oneway: only port 1's RX went through the backend; the null
        # port's (2) are frames the generator made
        self.assertAlmostEqual(bench.gen_cycles_per_pkt(a, b, [1]), 300.0)

    def test_first_snapshot_before_any_packet(self):
        a = fwd(None, {0: 0})
        b = fwd(5000, {0: 50})
        self.assertAlmostEqual(bench.gen_cycles_per_pkt(a, b, [0]), 100.0)
        self.assertIsNone(bench.gen_cycles_per_pkt(b, a, [0]))
        self.assertIsNone(bench.gen_cycles_per_pkt(a, a, [0]))


class TestLineProbe(unittest.TestCase):
    def test_parse(self):
        d = bench.parse_lineprobe(
            'lineprobe: cpu 0 <-> cpu 1: round trip median 452.3 ns p90 '
            '483.1 ns (min 402.3, mean 4761.6; 2000 samples of 100 trips); '
            'one way median 226.1 ns p90 241.6 ns')
        self.assertEqual(d['line_rtt_ns'], 452.3)
        self.assertEqual(d['line_rtt_p90_ns'], 483.1)
        self.assertEqual(d['line_rtt_min_ns'], 402.3)
        self.assertEqual(d['line_rtt_mean_ns'], 4761.6)
        self.assertAlmostEqual(d['line_oneway_ns'], 226.15)
        self.assertEqual(bench.parse_lineprobe('lineprobe: CPU 1 did not '
                                               'answer within 10 s'), {})


LAT_LINE = ('result frame=60 inflight=1 n=190000 lost=0 stale=2 wrongport=0 '
            'txfail=0 min_us=1.100 p50_us=1.340 p90_us=1.500 p99_us=1.850 '
            'p999_us=9.000 max_us=120.000 mean_us=4.430 kpps=222.0')


def lrow(backend, pair, p50, p99, inflight=1):
    r = bench.parse_latency(LAT_LINE)
    r.update(backend=backend, pair=pair, p50_us=p50, p99_us=p99,
             topo='loopback', ring='split', size=64, inflight=inflight)
    return r


class TestLatency(unittest.TestCase):
    def test_parse(self):
        r = bench.parse_latency(LAT_LINE)
        self.assertEqual(r['n'], 190000)
        self.assertEqual(r['stale'], 2)
        self.assertEqual(r['p50_us'], 1.34)
        self.assertEqual(r['p99_us'], 1.85)
        self.assertEqual(r['kpps'], 222.0)
        with self.assertRaises(bench.BenchError):
            bench.parse_latency('result frame=60 n=3')

    def test_summary_medians_and_pairwise(self):
        rows = [lrow('vre', 0, 2.0, 4.0), lrow('dpdk', 0, 1.0, 2.0),
                lrow('vre', 1, 3.0, 3.0), lrow('dpdk', 1, 1.0, 3.0),
                lrow('vre', 2, 2.0, 9.0), lrow('dpdk', 2, 2.0, 3.0),
                lrow('vre', 0, 5.0, 5.0, inflight=4)]
        s = bench.summarize_latency(rows, ['vre', 'dpdk'])
        d = {(r['backend'], r['inflight']): r for r in s}
        self.assertEqual(d[('vre', 1)]['median_p50_us'], 2.0)
        self.assertEqual(d[('vre', 1)]['median_p99_us'], 4.0)
        self.assertEqual(d[('vre', 1)]['max_p99_us'], 9.0)
        # per pair p50: 2/1, 3/1, 2/2; p99: 4/2, 3/3, 9/3
        self.assertEqual(d[('dpdk', 1)]['p50_pair_ratio_vre'], 2.0)
        self.assertEqual(d[('dpdk', 1)]['p99_pair_ratio_vre'], 2.0)
        self.assertEqual(d[('vre', 4)]['n'], 1)
        self.assertNotIn(('dpdk', 4), d)

    def test_failed_runs_left_out(self):
        bad = {'backend': 'vre', 'pair': 0, 'topo': 'loopback',
               'ring': 'split', 'size': 64, 'inflight': 1, 'p50_us': None}
        s = bench.summarize_latency([bad, lrow('dpdk', 0, 1.0, 2.0)],
                                    ['vre', 'dpdk'])
        self.assertEqual([r['backend'] for r in s], ['dpdk'])
        self.assertIsNone(s[0]['p99_pair_ratio_vre'])

    def test_plan_and_args(self):
        cfg = bench.parse_args(['--latency', '--pairs', '2'])
        self.assertEqual(cfg.sizes, [64])
        self.assertEqual(cfg.topos, ['loopback', 'xconnect'])
        self.assertEqual(cfg.inflight, [1, 4])
        bs = [bench.VreBackend(cfg), bench.DpdkBackend(cfg),
              bench.OvsBackend(cfg)]
        names = [(t, b.name) for t, _, _, _, _, b in bench.plan(cfg, bs)]
        self.assertEqual(names[:4], [('loopback', 'vre'),
                                     ('loopback', 'dpdk')] * 2)
        self.assertEqual(names[8:11], [('xconnect', 'vre'),
                                       ('xconnect', 'dpdk'),
                                       ('xconnect', 'ovs')])
        cfg = bench.parse_args(['--latency', '--topos', 'learn',
                                '--pairs', '3', '--pairs-other', '1'])
        self.assertEqual(len(bench.plan(cfg, bs)), 2 * 3 * 2)  # vre, ovs
        with self.assertRaises(SystemExit):
            bench.parse_args(['--latency', '--topos', 'oneway'])
        with self.assertRaises(SystemExit):
            bench.parse_args(['--inflight', '0'])


class TestReports(unittest.TestCase):
    def test_gen_cycles_pairwise_ratio(self):
        rows = [row('vre', 0, 4.0), row('dpdk', 0, 2.0),
                row('vre', 1, 6.0), row('dpdk', 1, 2.0)]
        for r, g in zip(rows, (300.0, 100.0, 200.0, 200.0)):
            r['gen_cycles'] = g
        s = {r['backend']: r for r in bench.summarize(rows, ['vre', 'dpdk'])}
        self.assertEqual(s['vre']['median_gen_cycles'], 250.0)
        self.assertEqual(s['dpdk']['median_gen_cycles'], 150.0)
        # per pair 3.0 and 1.0
        self.assertEqual(s['dpdk']['gen_pair_ratio_vre'], 2.0)

    def test_markdown_table(self):
        rows = [row('vre', 0, 4.0), row('dpdk', 0, 2.0)]
        rows[0]['gen_cycles'], rows[1]['gen_cycles'] = 300.0, 100.0
        summary = bench.summarize(rows, ['vre', 'dpdk'])
        machine = {'cpu_model': 'X', 'cores': 2, 'loadavg': '0.5',
                   'dpdk': '22.11', 'ovs': '3.1', 'gen_cpu': 0,
                   'backend_cpu': 1, 'line_rtt_ns': 480.0,
                   'line_rtt_p90_ns': 510.0, 'line_oneway_ns': 240.0}
        with tempfile.TemporaryDirectory() as d:
            path = bench.write_markdown(d, 'S', machine, summary,
                                        ['vre', 'dpdk'])
            with open(path) as f:
                text = f.read()
        self.assertIn('round trip median 480 ns (one way 240 ns)', text)
        self.assertIn('| gen cyc/pkt with vre | gen cyc/pkt with dpdk |', text)
        self.assertIn('| xconnect split 64 B | 4.00 | 2.00 | 2.00 | 100 | 100 '
                      '| 300 | 100 | 3.00 |', text)


if __name__ == '__main__':
    unittest.main()
