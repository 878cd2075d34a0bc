#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Throughput harness: one dpdk-testpmd virtio-user traffic generator against
several vhost-user backends in turn (VRE's vre-switch, DPDK's vhost PMD in
testpmd, Open vSwitch with DPDK), alternating them A B A B so that the slow
drift of a shared machine hits every backend alike. Driven by perf/bench;
see perf/README.md for the method and what each topology means."""

import argparse
import csv
import datetime
import os
import platform
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTPMD = shutil.which('dpdk-testpmd') or '/usr/bin/dpdk-testpmd'
OVS_VSWITCHD = '/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk'
OVS_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema'

ALL_TOPOS = ['loopback', 'xconnect', 'learn', 'oneway']
ALL_RINGS = ['split', 'packed']
ALL_SIZES = [64, 512, 1518]
ALL_BACKENDS = ['vre', 'dpdk', 'ovs', 'vreb']
# The default set; 'vreb' (a second vre-switch build, --vreb-bin) is for
# A/B runs of two VRE builds: it alternates with the others like any peer,
# so the summary's VRE/vreb pairwise ratio compares the two builds.
DEFAULT_BACKENDS = ['vre', 'dpdk', 'ovs']
# Headline topologies get --pairs alternating pairs; the others --pairs-other.
HEADLINE_TOPOS = ('loopback', 'xconnect')
# --latency: frames come back to the generator (oneway's never do).
LATENCY_TOPOS = ['loopback', 'xconnect', 'learn']
PORTS = {'loopback': 1, 'xconnect': 2, 'learn': 2, 'oneway': 2}
# Fixed generator MACs so a learning switch sees each station on one port.
GEN_MACS = ['02:00:00:00:00:10', '02:00:00:00:00:11']
PLOT_COLOURS = {'vre': '#d62728', 'dpdk': '#1f77b4', 'ovs': '#2ca02c',
                'vreb': '#ff7f0e'}
FCS = 4  # sizes are Ethernet frame sizes with FCS, as in RFC 2544


def log(msg=''):
    print(msg, flush=True)


# ---------------------------------------------------------------- processes

class Proc:
    """A child in its own process group, its output logged and queued."""
    live = []

    def __init__(self, name, argv, logpath, stdin=False, env=None,
                 line_buffer=True):
        self.name = name
        self.argv = argv
        self.logf = open(logpath, 'w')
        self.logf.write('# ' + ' '.join(argv) + '\n')
        self.logf.flush()
        if line_buffer:  # testpmd's stdout is a pipe: make it line-buffered
            argv = ['stdbuf', '-oL'] + argv
        self.lines = []
        self.t0 = time.monotonic()
        self.q = queue.Queue()
        self.p = subprocess.Popen(
            argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors='replace', start_new_session=True, env=env)
        Proc.live.append(self)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            t = time.monotonic()
            line = line.rstrip('\n')
            self.lines.append((t, line))
            self.logf.write(f'{t - self.t0:8.3f} {line}\n')
            self.q.put((t, line))
        self.q.put((time.monotonic(), None))

    def tail(self, n=2):
        """Its last words, for error messages."""
        self.reader.join(1)
        last = [line.strip() for _, line in self.lines if line.strip()]
        return ' / '.join(last[-n:]) or f'rc {self.p.returncode}'

    def alive(self):
        return self.p.poll() is None

    def send(self, cmd):
        if not self.alive():
            raise BenchError(f'{self.name} exited (rc {self.p.returncode})')
        self.p.stdin.write(cmd + '\n')
        self.p.stdin.flush()

    def drain(self):
        while True:
            try:
                self.q.get_nowait()
            except queue.Empty:
                return

    def expect(self, regex, timeout):
        """Lines up to and including the first that matches, else raises."""
        rx = re.compile(regex)
        got = []
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise BenchError(f'{self.name}: no /{regex}/ within {timeout}s')
            try:
                t, line = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise BenchError(f'{self.name} exited (rc {self.p.wait()}) '
                                 f'waiting for /{regex}/: {self.tail()}')
            got.append((t, line))
            if rx.search(line):
                return got

    def stop(self, quit_cmd=None, grace=3.0):
        if self.alive() and quit_cmd:
            try:
                self.send(quit_cmd)
                self.p.wait(grace)
            except (BenchError, OSError, subprocess.TimeoutExpired):
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not self.alive():
                break
            try:
                os.killpg(self.p.pid, sig)
                self.p.wait(grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.reader.join(1)
        self.logf.close()
        if self in Proc.live:
            Proc.live.remove(self)


def kill_all():
    for p in list(Proc.live):
        p.stop()


class BenchError(Exception):
    pass


def wait_paths(paths, timeout, proc=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(os.path.exists(p) for p in paths):
            return
        if proc is not None and not proc.alive():
            raise BenchError(f'{proc.name} exited before creating its '
                             f'sockets: {proc.tail()}')
        time.sleep(0.02)
    raise BenchError(f'{paths} not created within {timeout}s')


def run_cmd(argv, env=None, timeout=20):
    r = subprocess.run(argv, env=env, capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode:
        raise BenchError(f'{" ".join(argv)}: rc {r.returncode}: '
                         f'{r.stderr.strip() or r.stdout.strip()}')
    return r.stdout


# ---------------------------------------------------------------- generator

class Generator:
    """dpdk-testpmd with one virtio-user port per backend port, driven
    interactively through its stdin: the harness asks for `show port stats
    all` once a second (non-interactive --stats-period was seen printing only
    every other second on these machines)."""

    def __init__(self, cfg, run_dir, ring, topo, socks, frames, server):
        self.cfg, self.topo, self.nports = cfg, topo, len(socks)
        self.frames = frames
        frame = frames[0]
        argv = [TESTPMD, '-l', f'{cfg.gen_cpu},{cfg.backend_cpu}',
                '--main-lcore', str(cfg.backend_cpu), '--no-pci',
                '--in-memory', '--single-file-segments',
                '--file-prefix', f'vregen{os.getpid()}']
        for i, s in enumerate(socks):
            dev = f'net_virtio_user{i},path={s},queues=1'
            if ring == 'packed':
                dev += ',packed_vq=1'
            if server:
                dev += ',server=1'
            if topo == 'learn':
                dev += f',mac={GEN_MACS[i]}'
            argv += ['--vdev', dev]
        # 16384 mbufs (36 MB) are plenty for 2 rings of 256 and a few
        # bursts; testpmd's default pool (340 MB) only costs start-up time
        # and hugepages, which other work on the machine may need.
        # --record-core-cycles: the generator's own busy cycles per packet,
        # the cost a backend imposes on its peer (fwd_totals()).
        app = ['-i', '--nb-cores=1', '--no-lsc-interrupt', '--disable-link-check',
               '--total-num-mbufs=16384', f'--txpkts={frame}',
               '--record-core-cycles']
        if topo == 'loopback':
            app += ['--forward-mode=io', '--port-topology=loop']
        elif topo == 'xconnect':
            app += ['--forward-mode=io', '--port-topology=paired']
        elif topo == 'learn':
            # mac mode rewrites src = own port, dst = the other port's MAC,
            # so stations never move and the switch can forward by MAC.
            app += ['--forward-mode=mac', '--port-topology=paired',
                    f'--eth-peer=0,{GEN_MACS[1]}', f'--eth-peer=1,{GEN_MACS[0]}']
        elif topo == 'oneway':
            # A null port is the source and the sink: streams null->port0,
            # port0->port1 (idle), port1->null. Port 0 only sends, port 1
            # only receives: the backend forwards one way. A null port makes
            # one frame size, so there is one per size (ports 2, 3, ...)
            # and set_frame() picks it with the port list.
            for i, f in enumerate(frames):
                argv += ['--vdev', f'net_null{i},size={f},copy=0']
            app += ['--forward-mode=io', '--port-topology=chained',
                    '--portlist=2,0,1']
        self.expect_ports = self.nports + (len(frames) if topo == 'oneway'
                                           else 0)
        self.proc = Proc('generator', argv + ['--'] + app,
                         os.path.join(run_dir, 'generator.log'), stdin=True)

    def wait_prompt(self, timeout=20):
        testpmd_sync(self.proc, timeout)

    def port_links(self):
        self.proc.drain()
        self.proc.send('show port summary all')
        got = self.proc.expect(r'^Number of available ports: \d+', 5)
        n = int(re.search(r'(\d+)$', got[-1][1]).group(1))
        links = {}
        for _ in range(n + 1):
            _, line = self.proc.expect(r'.', 5)[-1]
            m = re.match(r'^(\d+)\s+\S+\s+(\S+)\s+\S+\s+(\S+)', line)
            if m:
                links[int(m.group(1))] = (m.group(2), m.group(3))
        return n, links

    def wait_links(self, timeout):
        end = time.monotonic() + timeout
        while True:
            n, links = self.port_links()
            if n != self.expect_ports:
                raise BenchError(f'generator has {n} ports, wants '
                                 f'{self.expect_ports}; see {self.proc.logf.name}')
            if all(st == 'up' for _, st in links.values()):
                return
            if time.monotonic() > end:
                raise BenchError(f'generator links not up: {links}')
            time.sleep(0.2)

    def start(self, tx_first):
        self.proc.drain()
        if self.topo == 'oneway':
            self.proc.send('start')
        else:
            self.proc.send(f'start tx_first {tx_first}')
        self.proc.expect(r'forwarding packets/burst|Packet forwarding already', 10)

    def stop(self):
        self.proc.drain()
        self.proc.send('stop')
        self.proc.expect(r'^Done\.', 10)

    def set_frame(self, frame):
        if self.topo == 'oneway':
            self.proc.send(f'set portlist {2 + self.frames.index(frame)},0,1')
        else:
            self.proc.send(f'set txpkts {frame}')

    def sample(self):
        """Counters of every port, with the time they were printed."""
        self.proc.drain()
        self.proc.send('show port stats all')
        ports, cur, t0 = {}, None, None
        end = time.monotonic() + 5
        while len(ports) < self.expect_ports or cur is not None:
            got = self.proc.expect(r'.', max(0.1, end - time.monotonic()))
            t, line = got[-1]
            m = re.search(r'NIC statistics for port (\d+)', line)
            if m:
                cur = {'port': int(m.group(1))}
                t0 = t0 or t
                continue
            if cur is None:
                continue
            for key, rx in (('rx', r'RX-packets:\s+(\d+)'),
                            ('rx_bytes', r'RX-bytes:\s+(\d+)'),
                            ('tx', r'TX-packets:\s+(\d+)'),
                            ('rx_pps', r'Rx-pps:\s+(\d+)')):
                m = re.search(rx, line)
                if m:
                    cur[key] = int(m.group(1))
            if re.match(r'^\s*#{20,}\s*$', line):
                ports[cur['port']] = cur
                cur = None
        return t0, ports

    def fwd_totals(self):
        """The generator's busy cycles and per-port RX packets since its
        last start (testpmd `show fwd stats all`); see parse_fwd_stats."""
        self.proc.drain()
        self.proc.send('show fwd stats all')
        # The cycles line is printed only once packets moved: a second
        # command whose answer is known marks the end of the first's.
        self.proc.send('show port summary all')
        got = self.proc.expect(r'^Number of available ports', 5)
        out = parse_fwd_stats(line for _, line in got)
        out['syscw'] = proc_syscw(self.proc.p.pid)
        return out

    def close(self):
        self.proc.stop('quit')


class LatGen:
    """perf/lat_gen (--latency): our own virtio-user driver on the
    generator CPU that sends single frames and times each round trip
    through the backend. Same vdevs as Generator; fixed MACs in every
    topology, since its frames carry src/dst MACs a learning switch uses."""

    def __init__(self, cfg, run_dir, ring, topo, socks, server):
        argv = [cfg.latgen_bin, '-l', str(cfg.gen_cpu), '--no-pci',
                '--in-memory', '--single-file-segments',
                '--file-prefix', f'vrelat{os.getpid()}']
        for i, s in enumerate(socks):
            dev = f'net_virtio_user{i},path={s},queues=1,mac={GEN_MACS[i]}'
            if ring == 'packed':
                dev += ',packed_vq=1'
            if server:
                dev += ',server=1'
            argv += ['--vdev', dev]
        argv += ['--', '-t', 'pair' if len(socks) == 2 else 'loop',
                 '-T', str(cfg.lat_timeout_ms)]
        self.proc = Proc('lat-gen', argv, os.path.join(run_dir, 'lat-gen.log'),
                         stdin=True)

    def wait_ready(self, timeout=40):
        got = self.proc.expect(r'^ready ports=', timeout)
        if 'link=up' not in got[-1][1]:
            raise BenchError(f'lat_gen: {got[-1][1]}')

    def run(self, frame, inflight, warm_s, secs):
        """parse_latency()'s dict for one measurement."""
        self.proc.drain()
        self.proc.send(f'run {frame} {inflight} {int(warm_s * 1000)} '
                       f'{int(secs * 1000)}')
        got = self.proc.expect(r'^(result|error) ', warm_s + secs + 20)
        line = got[-1][1]
        if line.startswith('error'):
            raise BenchError(f'lat_gen: {line}')
        return parse_latency(line)

    def close(self):
        self.proc.stop('quit')


LAT_KEYS = ('n', 'lost', 'stale', 'wrongport', 'txfail', 'min_us', 'p50_us',
            'p90_us', 'p99_us', 'p999_us', 'max_us', 'mean_us', 'kpps')


def parse_latency(line):
    """lat_gen's result line as a dict of numbers (LAT_KEYS, frame,
    inflight)."""
    out = {}
    for k, v in re.findall(r'(\w+)=([0-9.]+)', line):
        out[k] = float(v) if '.' in v else int(v)
    missing = [k for k in LAT_KEYS if k not in out]
    if missing:
        raise BenchError(f'lat_gen result without {missing}: {line}')
    return out


# testpmd 22.11 with --record-core-cycles, `show fwd stats all` / `stop`:
#   ---------------------- Forward statistics for port 0  ----------------------
#   RX-packets: 2741120        RX-dropped: 0             RX-total: 2741120
#   ...
#   CPU cycles/packet=78.66 (total cycles=431283278 / total io packets=5482656) at 2100 MHz Clock
# "total cycles" are busy cycles: a forwarding pass that receives nothing
# returns before its cycles are added (app/test-pmd/iofwd.c, macfwd.c).
FWD_PORT_RE = re.compile(r'Forward statistics for port (\d+)')
FWD_RX_RE = re.compile(r'^\s*RX-packets:\s+(\d+)')
FWD_CYC_RE = re.compile(r'CPU cycles/packet=([0-9.]+) \(total cycles=(\d+) / '
                        r'total \S+ packets=(\d+)\)(?: at (\d+) MHz)?')


def parse_fwd_stats(lines):
    """{'cycles': busy cycles or None, 'pkts': packets they cover or None,
    'mhz': TSC MHz or None, 'rx': {port: RX packets}} from testpmd's
    forward statistics."""
    out = {'cycles': None, 'pkts': None, 'mhz': None, 'rx': {}}
    port = None
    for line in lines:
        m = FWD_PORT_RE.search(line)
        if m:
            port = int(m.group(1))
            continue
        if 'Accumulated forward statistics' in line:
            port = None
            continue
        m = FWD_RX_RE.search(line)
        if m and port is not None:
            out['rx'][port] = int(m.group(1))
            continue
        m = FWD_CYC_RE.search(line)
        if m:
            out['cycles'] = int(m.group(2))
            out['pkts'] = int(m.group(3))
            out['mhz'] = int(m.group(4)) if m.group(4) else None
    return out


def proc_syscw(pid):
    """Write-type system calls the process has made so far (every thread's
    `syscw` in /proc/PID/task/*/io), or None. For the generator these are
    virtqueue kicks (an eventfd write each) plus its few stdout lines."""
    total = 0
    try:
        for tid in os.listdir(f'/proc/{pid}/task'):
            with open(f'/proc/{pid}/task/{tid}/io') as f:
                for line in f:
                    if line.startswith('syscw:'):
                        total += int(line.split()[1])
    except (OSError, ValueError):
        return None
    return total


def gen_cycles_per_pkt(a, b, ports):
    """Generator busy cycles per packet through the backend between two
    fwd_totals() snapshots: the cycles' growth over the growth of RX on the
    ports that measure the backend (in oneway the null port's RX, frames
    the generator makes, is left out). None when either lacks cycles."""
    if a['cycles'] is None and b['cycles'] is not None:
        a = dict(a, cycles=0)  # no packets had moved at the first snapshot
    if a['cycles'] is None or b['cycles'] is None:
        return None
    dpk = sum(b['rx'].get(p, 0) - a['rx'].get(p, 0) for p in ports)
    if dpk <= 0:
        return None
    return (b['cycles'] - a['cycles']) / dpk


def gen_writes_per_kpkt(a, b, ports):
    """The generator's write system calls per 1000 packets through the
    backend between two fwd_totals() snapshots, or None. A driver kicks a
    queue whose device has not suppressed notifications with one eventfd
    write: about 30 per 1000 packets means a kick per burst."""
    if a.get('syscw') is None or b.get('syscw') is None:
        return None
    dpk = sum(b['rx'].get(p, 0) - a['rx'].get(p, 0) for p in ports)
    if dpk <= 0:
        return None
    return (b['syscw'] - a['syscw']) * 1000.0 / dpk


def testpmd_sync(proc, timeout):
    """Returns once testpmd's command line answers (its prompt ends in no
    newline, so a line reader cannot wait for it)."""
    proc.send('show port summary all')
    proc.expect(r'^Number of available ports', timeout)


def rx_ports(topo):
    """Generator ports whose receive counters measure the backend."""
    return {'loopback': [0], 'xconnect': [0, 1], 'learn': [0, 1],
            'oneway': [1]}[topo]


# ---------------------------------------------------------------- backends

class Backend:
    name = '?'
    server = True      # backend listens on the sockets (generator connects)
    topos = ALL_TOPOS

    def __init__(self, cfg):
        self.cfg = cfg
        self.proc = None
        self.procs = []

    def available(self):
        """None when usable, else why not."""
        return None

    def supports(self, topo):
        return topo in self.topos

    def start(self, run_dir, ring, topo, socks, gen_proc=None):
        raise NotImplementedError

    def after_connect(self):
        pass

    def size_begin(self):
        pass

    def size_end(self, t_from, t_to):
        """Backend-reported cycles per packet over the size's run, or None."""
        return None

    def close(self):
        pass


# --- VRE ------------------------------------------------------------------

def vre_cmdline(cfg, binary, ring, topo, socks):
    """vre-switch's command line: the one place to adjust when its options
    change. The ring type is the generator's choice (packed_vq=1), so it is
    not passed. oneway runs as xconnect: the generator sends on port 0 and
    only receives on port 1."""
    mode = {'loopback': 'loopback', 'xconnect': 'xconnect', 'learn': 'learn',
            'oneway': 'xconnect'}[topo]
    argv = [binary, '-l', f'{cfg.gen_cpu},{cfg.backend_cpu}',
            '--main-lcore', str(cfg.gen_cpu), '--no-pci', '--in-memory',
            '--file-prefix', f'vrebe{os.getpid()}', '--']
    for s in socks:
        argv += ['--vhost', s]
    argv += ['--mode', mode, '--workers', str(cfg.backend_cpu),
             '--poll', 'poll', '--stats-interval', '1', '--ctl', 'none']
    return argv


# Parser hook for the cycles per packet vre-switch prints with its periodic
# stats. Its worker lines carry running totals ("worker 0 cpu 1: packets N
# busy-cycles C cycles/pkt X ..."): the window's value is the change in busy
# cycles over the change in packets, summed over workers. Lines with only a
# per-interval "cycles/pkt X" (or "cycles_per_pkt=X") give their median.
VRE_TOTALS_RE = re.compile(r'worker (\d+)\b.*?\bpackets (\d+) busy-cycles (\d+)')
VRE_CYCLES_RE = re.compile(r'(?:cycles|cyc)[/_ ](?:per[_ ])?(?:pkt|packet)s?'
                           r'\s*[=:]?\s*([0-9]+(?:\.[0-9]+)?)', re.I)


def parse_vre_cycles(lines):
    """Cycles per packet over the given stats lines, or None."""
    first, last, vals = {}, {}, []
    for line in lines:
        m = VRE_TOTALS_RE.search(line)
        if m:
            w, pk, cy = m.group(1), int(m.group(2)), int(m.group(3))
            first.setdefault(w, (pk, cy))
            last[w] = (pk, cy)
            continue
        m = VRE_CYCLES_RE.search(line)
        if m and float(m.group(1)) > 0:
            vals.append(float(m.group(1)))
    dpk = sum(last[w][0] - first[w][0] for w in last)
    dcy = sum(last[w][1] - first[w][1] for w in last)
    if dpk > 0:
        return dcy / dpk
    return statistics.median(vals) if vals else None


class VreBackend(Backend):
    name = 'vre'

    def __init__(self, cfg):
        super().__init__(cfg)
        self.binary = cfg.vre_bin or os.path.join(ROOT, 'build', 'examples',
                                                  'vre-switch')

    def available(self):
        if not os.access(self.binary, os.X_OK):
            return (f'{os.path.relpath(self.binary, ROOT)} not found '
                    '(build the switch: ninja -C build; or --vre-bin PATH)')
        return None

    def start(self, run_dir, ring, topo, socks, gen_proc=None):
        argv = vre_cmdline(self.cfg, self.binary, ring, topo, socks)
        self.proc = Proc('vre-switch', argv, os.path.join(run_dir, 'vre.log'))
        wait_paths(socks, 20, self.proc)

    def size_end(self, t_from, t_to):
        # Totals are printed once a second: the last line before the window
        # is its baseline, so a short window still spans one interval.
        lines = [(t, line) for t, line in self.proc.lines if t <= t_to]
        before = [i for i, (t, line) in enumerate(lines)
                  if t < t_from and VRE_TOTALS_RE.search(line)]
        start = before[-1] if before else 0
        return parse_vre_cycles(line for i, (t, line) in enumerate(lines)
                                if i == start or (i > start and t >= t_from))

    def close(self):
        if self.proc:
            self.proc.stop()


class VrebBackend(VreBackend):
    """A second vre-switch build (--vreb-bin), run exactly as 'vre'."""
    name = 'vreb'

    def __init__(self, cfg):
        super().__init__(cfg)
        self.binary = cfg.vreb_bin or ''

    def available(self):
        if not self.binary:
            return 'no --vreb-bin given'
        return super().available()


# --- DPDK vhost PMD in testpmd ---------------------------------------------

class DpdkBackend(Backend):
    """testpmd forwarding between net_vhost ports (io mode): the reference
    for what DPDK's own vhost library does with the same traffic. It has no
    MAC learning, so it sits out 'learn'. --record-core-cycles makes it print
    busy cycles per packet when forwarding stops."""
    name = 'dpdk'
    topos = ['loopback', 'xconnect', 'oneway']

    def start(self, run_dir, ring, topo, socks, gen_proc=None):
        argv = [TESTPMD, '-l', f'{self.cfg.gen_cpu},{self.cfg.backend_cpu}',
                '--main-lcore', str(self.cfg.gen_cpu), '--no-pci',
                '--in-memory', '--file-prefix', f'vrevh{os.getpid()}']
        for i, s in enumerate(socks):
            argv += ['--vdev', f'net_vhost{i},iface={s},queues=1']
        app = ['-i', '--forward-mode=io', '--nb-cores=1',
               '--record-core-cycles', '--no-lsc-interrupt',
               '--disable-link-check', '--total-num-mbufs=32768',
               '--port-topology=' + ('loop' if len(socks) == 1 else 'paired')]
        self.proc = Proc('dpdk-vhost', argv + ['--'] + app,
                         os.path.join(run_dir, 'dpdk-vhost.log'), stdin=True)
        wait_paths(socks, 20, self.proc)
        testpmd_sync(self.proc, 20)

    def size_begin(self):
        self.proc.drain()
        self.proc.send('start')
        self.proc.expect(r'forwarding packets/burst|already', 10)

    def size_end(self, t_from, t_to):
        self.proc.drain()
        self.proc.send('stop')
        got = self.proc.expect(r'^Done\.', 10)
        for _, line in got:
            m = re.search(r'CPU cycles/packet=([0-9.]+)', line)
            if m:
                return float(m.group(1))
        return None

    def close(self):
        if self.proc:
            self.proc.stop('quit')


# --- Open vSwitch with DPDK ------------------------------------------------

class OvsBackend(Backend):
    """ovs-vswitchd-dpdk run by hand in a private folder (own ovsdb-server,
    fresh database, own run/log dirs) and a private network namespace (the
    bridge's internal tap port lives there, not on the host). Ports are
    dpdkvhostuserclient: OVS connects, the generator listens (server=1)."""
    name = 'ovs'
    server = False
    topos = ['xconnect', 'learn', 'oneway']

    def available(self):
        for f in (OVS_VSWITCHD, OVS_SCHEMA, shutil.which('ovsdb-server'),
                  shutil.which('ovs-vsctl'), shutil.which('ovs-ofctl'),
                  shutil.which('ovs-appctl'), shutil.which('unshare')):
            if not f or not os.path.exists(f):
                return (f'{f or "an OVS tool"} missing (apt-get install '
                        'openvswitch-switch-dpdk)')
        return None

    def _ctl(self, tool, *args, timeout=20):
        return run_cmd([tool] + list(args), env=self.env, timeout=timeout)

    def vsctl(self, *args):
        return self._ctl('ovs-vsctl', f'--db=unix:{self.db_sock}',
                         '--timeout=15', *args)

    def ofctl(self, *args):
        return self._ctl('ovs-ofctl', *args[:1],
                         f'unix:{self.dir}/br0.mgmt', *args[1:])

    def appctl(self, *args):
        return self._ctl('ovs-appctl', '-t', f'{self.dir}/vswitchd.ctl', *args)

    def start(self, run_dir, ring, topo, socks, gen_proc=None):
        self.dir = d = os.path.join(run_dir, 'ovs')
        os.makedirs(d)
        self.db_sock = os.path.join(d, 'db.sock')
        self.env = dict(os.environ, OVS_RUNDIR=d, OVS_DBDIR=d, OVS_LOGDIR=d,
                        OVS_SYSCONFDIR=d)
        self.procs = []
        run_cmd(['ovsdb-tool', 'create', os.path.join(d, 'conf.db'),
                 OVS_SCHEMA], env=self.env)
        db = Proc('ovsdb-server', [
            'ovsdb-server', os.path.join(d, 'conf.db'),
            f'--remote=punix:{self.db_sock}',
            f'--pidfile={d}/ovsdb-server.pid',
            f'--unixctl={d}/ovsdb-server.ctl',
            f'--log-file={d}/ovsdb-server.log'],
            os.path.join(run_dir, 'ovsdb-server.out'), env=self.env,
            line_buffer=False)
        self.procs.append(db)
        wait_paths([self.db_sock], 10, db)
        self.vsctl('--no-wait', 'init')
        self.vsctl('--no-wait', 'set', 'Open_vSwitch', '.',
                   'other_config:dpdk-init=true',
                   'other_config:dpdk-extra=--in-memory --no-pci '
                   f'--file-prefix vreovs{os.getpid()}',
                   f'other_config:pmd-cpu-mask={1 << self.cfg.backend_cpu:#x}')
        sw = Proc('ovs-vswitchd', [
            'unshare', '--net', OVS_VSWITCHD, f'unix:{self.db_sock}',
            f'--pidfile={d}/vswitchd.pid', f'--unixctl={d}/vswitchd.ctl',
            f'--log-file={d}/vswitchd.log'],
            os.path.join(run_dir, 'ovs-vswitchd.out'), env=self.env,
            line_buffer=False)
        self.procs.append(sw)
        wait_paths([f'{d}/vswitchd.ctl'], 30, sw)
        self.vsctl('add-br', 'br0', '--', 'set', 'bridge', 'br0',
                   'datapath_type=netdev')
        for i, s in enumerate(socks):
            wait_paths([s], 20, gen_proc)
            self.vsctl('add-port', 'br0', f'vh{i}', '--', 'set', 'Interface',
                       f'vh{i}', 'type=dpdkvhostuserclient',
                       f'options:vhost-server-path={s}',
                       f'ofport_request={i + 1}')
        self.ofctl('del-flows', )
        if topo == 'learn':
            self.ofctl('add-flow', 'priority=0,actions=NORMAL')
            # No flooding to the bridge's own tap port: with two stations
            # NORMAL then only ever sends between the two vhost ports.
            self.ofctl('mod-port', 'br0', 'no-flood')
        else:
            self.ofctl('add-flow', 'in_port=1,actions=output:2')
            self.ofctl('add-flow', 'in_port=2,actions=output:1')

    def size_begin(self):
        self.appctl('dpif-netdev/pmd-stats-clear')

    def size_end(self, t_from, t_to):
        out = self.appctl('dpif-netdev/pmd-stats-show')
        with open(os.path.join(self.dir, 'pmd-stats.txt'), 'a') as f:
            f.write(out + '\n')
        m = re.search(r'avg processing cycles per packet:\s*([0-9.]+)', out)
        return float(m.group(1)) if m else None

    def close(self):
        for p in reversed(self.procs):
            p.stop()


BACKENDS = {'vre': VreBackend, 'dpdk': DpdkBackend, 'ovs': OvsBackend,
            'vreb': VrebBackend}


# ---------------------------------------------------------------- one run

START_TRIES = 4
CHECK_GAP = 0.25


def measure(gen, topo, cfg, warm, secs):
    """Waits warm seconds, then samples once a second for secs seconds.
    Returns (Mpps over the window, per-second Mpps list, average frame,
    window start, window end, restarts, generator busy cycles per packet,
    generator write syscalls per 1000 packets)."""
    ports = rx_ports(topo)
    # A closed loop (io + tx_first) that lost its packets stays empty: a
    # backend that dropped the first burst (a port it had not finished
    # setting up) would read as 0 Mpps. So packets must be moving when the
    # window opens; if not, inject again.
    for restarts in range(START_TRIES):
        time.sleep(max(0.0, warm - CHECK_GAP))
        _, before = gen.sample()
        time.sleep(CHECK_GAP)
        first = gen.sample()
        if sum(first[1][p]['rx'] - before[p]['rx'] for p in ports) > 0:
            break
        gen.stop()
        gen.start(cfg.tx_first)
    else:
        raise BenchError(f'no packets through the backend after '
                         f'{START_TRIES} starts')
    samples = [first]
    fwd_a = gen.fwd_totals()
    t_next = first[0] + 1.0
    for i in range(secs):
        delay = t_next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        samples.append(gen.sample())
        t_next += 1.0
    fwd_b = gen.fwd_totals()
    gcyc = gen_cycles_per_pkt(fwd_a, fwd_b, ports)
    gwr = gen_writes_per_kpkt(fwd_a, fwd_b, ports)
    (t_a, a), (t_b, b) = samples[0], samples[-1]
    pk = sum(b[p]['rx'] - a[p]['rx'] for p in ports)
    by = sum(b[p].get('rx_bytes', 0) - a[p].get('rx_bytes', 0) for p in ports)
    mpps = pk / (t_b - t_a) / 1e6
    per_sec = []
    for (ta, sa), (tb, sb) in zip(samples, samples[1:]):
        per_sec.append(sum(sb[p]['rx'] - sa[p]['rx'] for p in ports)
                       / (tb - ta) / 1e6)
    return (mpps, per_sec, (by / pk if pk else 0.0), t_a, t_b, restarts,
            gcyc, gwr)


def seconds_for(cfg, topo):
    return cfg.seconds if topo in HEADLINE_TOPOS else cfg.seconds_other


def one_run(cfg, backend, ring, topo, sizes, run_dir):
    """Starts backend and generator, measures every size in turn, stops both.
    Returns {size: dict}."""
    os.makedirs(run_dir)
    socks = [os.path.join(run_dir, f'p{i}.sock') for i in range(PORTS[topo])]
    frames = [s - FCS for s in sizes]
    gen = None
    results = {}
    try:
        # A listening backend must be up before the generator connects.
        # With a connecting backend (OVS) the generator listens, and
        # virtio-user in server mode blocks in its probe until its client
        # arrives, one port after the other: the backend adds each port when
        # its socket appears, rather than waiting out its 1 s reconnect timer.
        if backend.server:
            backend.start(run_dir, ring, topo, socks)
            gen = Generator(cfg, run_dir, ring, topo, socks, frames, False)
        else:
            gen = Generator(cfg, run_dir, ring, topo, socks, frames, True)
            backend.start(run_dir, ring, topo, socks, gen.proc)
        gen.wait_prompt(30)
        gen.wait_links(20)
        for i, size in enumerate(sizes):
            frame = size - FCS
            if i:
                gen.stop()
                gen.set_frame(frame)
            backend.size_begin()
            gen.start(cfg.tx_first)
            warm = cfg.warmup if i == 0 else cfg.settle
            mpps, per_sec, avg, t_a, t_b, restarts, gcyc, gwr = measure(
                gen, topo, cfg, warm, seconds_for(cfg, topo))
            cyc = backend.size_end(t_a, t_b)
            notes = []
            if restarts:
                notes.append(f'traffic restarted {restarts}x')
            if mpps > 0 and abs(avg - frame) > 1:
                notes.append(f'avg frame {avg:.0f} != {frame}')
            if per_sec and per_sec[-1] < 0.1 * max(per_sec):
                # io forwarding never replaces a dropped packet: a loop that
                # leaks ends near 0 (a busy machine alone swings by ~3x)
                notes.append('rate collapsed in the window (<10% of its '
                             'best second)')
            note = '; '.join(notes)
            results[size] = {'mpps': mpps, 'per_sec': per_sec, 'cycles': cyc,
                             'gen_cycles': gcyc, 'gen_writes': gwr,
                             'avg_frame': avg,
                             'note': note}
    finally:
        if gen is not None:
            gen.close()
        backend.close()
    return results


def one_latency_run(cfg, backend, ring, topo, sizes, run_dir):
    """--latency: starts backend and lat_gen, measures every size and
    in-flight count in turn, stops both. Returns {(size, inflight): dict}."""
    os.makedirs(run_dir)
    socks = [os.path.join(run_dir, f'p{i}.sock') for i in range(PORTS[topo])]
    gen = None
    results = {}
    try:
        if backend.server:
            backend.start(run_dir, ring, topo, socks)
            gen = LatGen(cfg, run_dir, ring, topo, socks, False)
        else:
            gen = LatGen(cfg, run_dir, ring, topo, socks, True)
            backend.start(run_dir, ring, topo, socks, gen.proc)
        gen.wait_ready()
        first = True
        for size in sizes:
            for inflight in cfg.inflight:
                backend.size_begin()
                t_a = time.monotonic()
                warm = cfg.warmup if first else cfg.settle
                res = gen.run(size - FCS, inflight, warm, cfg.seconds)
                t_b = time.monotonic()
                backend.size_end(t_a, t_b)  # keeps testpmd's start/stop paired
                first = False
                notes = []
                if res['lost']:
                    notes.append(f"{res['lost']} lost")
                if res['wrongport']:
                    notes.append(f"{res['wrongport']} on the wrong port")
                res['note'] = '; '.join(notes)
                results[(size, inflight)] = res
    finally:
        if gen is not None:
            gen.close()
        backend.close()
    return results


def summarize_latency(rows, backends):
    """Per (topo, ring, size, inflight, backend): medians over the pairs
    of p50, p99 and mean (us), the worst p99, and pairwise VRE/peer ratios
    of p50 and p99 (below 1: VRE is faster)."""
    by = {}
    for r in rows:
        if r.get('p50_us') is None:
            continue
        key = (r['topo'], r['ring'], r['size'], r['inflight'])
        by.setdefault(key, {}).setdefault(r['backend'], []).append(r)
    out = []
    for key in sorted(by, key=lambda k: (ALL_TOPOS.index(k[0]),
                                         ALL_RINGS.index(k[1]), k[2], k[3])):
        per = by[key]
        vre = {r['pair']: r for r in per.get('vre', [])}
        for b in backends:
            runs = per.get(b)
            if not runs:
                continue
            med = {k: statistics.median(r[k] for r in runs)
                   for k in ('p50_us', 'p99_us', 'mean_us', 'kpps')}
            row = {'topo': key[0], 'ring': key[1], 'size': key[2],
                   'inflight': key[3], 'backend': b, 'n': len(runs),
                   'median_p50_us': med['p50_us'],
                   'median_p99_us': med['p99_us'],
                   'median_mean_us': med['mean_us'],
                   'max_p99_us': max(r['p99_us'] for r in runs),
                   'median_kpps': med['kpps'],
                   'lost': sum(r['lost'] for r in runs),
                   'p50_pair_ratio_vre': None, 'p99_pair_ratio_vre': None}
            if b != 'vre' and vre:
                for q in ('p50', 'p99'):
                    prs = [vre[r['pair']][f'{q}_us'] / r[f'{q}_us'] for r in runs
                           if r['pair'] in vre and r[f'{q}_us']]
                    row[f'{q}_pair_ratio_vre'] = (statistics.median(prs)
                                                  if prs else None)
            out.append(row)
    return out


def print_latency_table(summary, machine=None):
    log('')
    if machine and machine.get('line_rtt_ns'):
        log(line_summary(machine))
    log(f"{'topology':9} {'ring':6} {'size':>5} {'infl':>4} {'backend':7} "
        f"{'n':>2} {'p50 us':>7} {'p99 us':>7} {'mean us':>7} {'max p99':>7} "
        f"{'kpps':>7} {'lost':>5} {'VRE/peer p50':>12} {'VRE/peer p99':>12}")
    for r in summary:
        log(f"{r['topo']:9} {r['ring']:6} {r['size']:>5} {r['inflight']:>4} "
            f"{r['backend']:7} {r['n']:>2} {fmt(r['median_p50_us']):>7} "
            f"{fmt(r['median_p99_us']):>7} {fmt(r['median_mean_us']):>7} "
            f"{fmt(r['max_p99_us']):>7} {fmt(r['median_kpps'], '{:.0f}'):>7} "
            f"{r['lost']:>5} {fmt(r['p50_pair_ratio_vre']):>12} "
            f"{fmt(r['p99_pair_ratio_vre']):>12}")


LAT_ROW_COLS = ['stamp', 'backend', 'ring', 'topo', 'size', 'inflight',
                'pair', 'order', 'n', 'lost', 'min_us', 'p50_us', 'p90_us',
                'p99_us', 'p999_us', 'max_us', 'mean_us', 'kpps', 'loadavg',
                'line_rtt_ns', 'error']
LAT_SUM_COLS = ['topo', 'ring', 'size', 'inflight', 'backend', 'n',
                'median_p50_us', 'median_p99_us', 'median_mean_us',
                'max_p99_us', 'median_kpps', 'lost', 'p50_pair_ratio_vre',
                'p99_pair_ratio_vre']
MACHINE_COLS = ['cpu_model', 'cores', 'hugepages', 'kernel', 'dpdk', 'ovs',
                'line_rtt_ns', 'line_rtt_p90_ns']


def write_latency_csvs(out_dir, stamp, machine, rows, summary):
    raw = os.path.join(out_dir, f'{stamp}-latency.csv')
    with open(raw, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(LAT_ROW_COLS + MACHINE_COLS)
        for r in rows:
            vals = []
            for c in LAT_ROW_COLS:
                v = stamp if c == 'stamp' else r.get(c)
                vals.append(fmt(v, '{:.3f}') if isinstance(v, float)
                            else ('' if v is None else v))
            w.writerow(vals + [machine.get(c, '') for c in MACHINE_COLS])
    summ = os.path.join(out_dir, f'{stamp}-latency-summary.csv')
    with open(summ, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(LAT_SUM_COLS + MACHINE_COLS)
        for r in summary:
            w.writerow([fmt(r[c], '{:.3f}') if isinstance(r[c], float)
                        else fmt(r[c], '{}') for c in LAT_SUM_COLS]
                       + [machine.get(c, '') for c in MACHINE_COLS])
    return raw, summ


# ---------------------------------------------------------------- reports

def machine_info():
    model = '?'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    mem = {}
    with open('/proc/meminfo') as f:
        for line in f:
            k, v = line.split(':', 1)
            mem[k] = v.strip()
    return {
        'host': platform.node(),
        'cpu_model': model,
        'cores': os.cpu_count(),
        'kernel': platform.release(),
        'hugepages': f"{mem.get('HugePages_Total', '?')}x"
                     f"{mem.get('Hugepagesize', '?').replace(' ', '')}",
        'hugepages_free': mem.get('HugePages_Free', '?'),
        'dpdk': dpkg_version('dpdk'),
        'ovs': dpkg_version('openvswitch-switch-dpdk'),
        'loadavg': open('/proc/loadavg').read().split()[0],
    }


# ---------------------------------------------------------------- line probe

LINEPROBE_RE = re.compile(r'round trip median ([0-9.]+) ns p90 ([0-9.]+) ns '
                          r'\(min ([0-9.]+), mean ([0-9.]+);')


def lineprobe_bin(cfg, tmp):
    """build/perf/lineprobe, else the source compiled with cc into tmp,
    else None."""
    built = cfg.lineprobe or os.path.join(ROOT, 'build', 'perf', 'lineprobe')
    if os.access(built, os.X_OK):
        return built
    cc = shutil.which('cc') or shutil.which('gcc')
    src = os.path.join(ROOT, 'perf', 'lineprobe.c')
    if not cc or not os.path.exists(src):
        return None
    out = os.path.join(tmp, 'lineprobe')
    r = subprocess.run([cc, '-O2', '-pthread', src, '-o', out],
                       capture_output=True, text=True, timeout=60)
    return out if r.returncode == 0 else None


def parse_lineprobe(text):
    """{'line_rtt_ns', 'line_rtt_p90_ns', 'line_rtt_min_ns',
    'line_rtt_mean_ns', 'line_oneway_ns'} from lineprobe's line, or {}."""
    m = LINEPROBE_RE.search(text)
    if not m:
        return {}
    med, p90, mn, mean = (float(x) for x in m.groups())
    return {'line_rtt_ns': med, 'line_rtt_p90_ns': p90, 'line_rtt_min_ns': mn,
            'line_rtt_mean_ns': mean, 'line_oneway_ns': med / 2}


def line_probe(cfg, tmp, samples=2000):
    """The cache-line round trip between the generator's and the backend's
    CPUs (perf/lineprobe): the price of every line a backend and the
    generator's driver hand each other. Returns parse_lineprobe()'s dict
    plus 'line_probe' (the probe's own words or why it did not run)."""
    binary = cfg.lineprobe_path or lineprobe_bin(cfg, tmp)
    if not binary:
        return {'line_probe': 'not run: build/perf/lineprobe missing and no cc'}
    cfg.lineprobe_path = binary  # compiled once per invocation
    try:
        r = subprocess.run([binary, '-n', str(samples), str(cfg.gen_cpu),
                            str(cfg.backend_cpu)],
                           capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return {'line_probe': 'not run: timed out'}
    text = (r.stdout.strip() or r.stderr.strip()).replace('\n', ' ')
    out = parse_lineprobe(text)
    out['line_probe'] = text
    return out


def line_summary(machine):
    return (f"cache line CPU {machine.get('gen_cpu', '?')} <-> CPU "
            f"{machine.get('backend_cpu', '?')}: round trip median "
            f"{machine['line_rtt_ns']:.0f} ns (one way "
            f"{machine['line_oneway_ns']:.0f} ns), p90 "
            f"{machine['line_rtt_p90_ns']:.0f} ns"
            + (f"; at the end {machine['line_rtt_end_ns']:.0f} ns"
               if machine.get('line_rtt_end_ns') else ''))


def dpkg_version(pkg):
    try:
        r = subprocess.run(['dpkg-query', '-W', '-f=${Version}', pkg],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() or '-'
    except (OSError, subprocess.TimeoutExpired):
        return '-'


def summarize(rows, backends):
    """Per (topo, ring, size): median Mpps per backend, and VRE/peer ratios:
    ratio of medians, and median of the ratios of runs paired in time; the
    same for the generator's busy cycles per packet (gen_pair_ratio_vre:
    the generator's cycles with VRE over those with the peer, pairwise;
    above 1 means VRE makes its peer work harder per packet)."""
    by, bad = {}, {}
    for r in rows:
        key = (r['topo'], r['ring'], r['size'])
        if r['mpps'] is None or r['flagged']:
            # Failed runs, and windows that did not measure a steady loop
            # (rate collapsed, frames of another size), stay out of the
            # medians; the table counts them.
            bad.setdefault(key, {}).setdefault(r['backend'], 0)
            bad[key][r['backend']] += 1
            by.setdefault(key, {})
            continue
        by.setdefault(key, {}).setdefault(r['backend'], []).append(r)
    out = []
    for key in sorted(by, key=lambda k: (ALL_TOPOS.index(k[0]),
                                         ALL_RINGS.index(k[1]), k[2])):
        per = by[key]
        vre = {r['pair']: r['mpps'] for r in per.get('vre', [])}
        vre_gen = {r['pair']: r.get('gen_cycles') for r in per.get('vre', [])
                   if r.get('gen_cycles')}
        for b in backends:
            runs = per.get(b)
            nbad = bad.get(key, {}).get(b, 0)
            if not runs:
                if nbad:
                    out.append({'topo': key[0], 'ring': key[1],
                                'size': key[2], 'backend': b, 'n': 0,
                                'bad': nbad, 'median_mpps': None,
                                'min_mpps': None, 'max_mpps': None,
                                'median_cycles': None,
                                'median_gen_cycles': None,
                                'median_gen_writes': None, 'ratio_vre': None,
                                'pair_ratio_vre': None,
                                'gen_pair_ratio_vre': None})
                continue
            mp = [r['mpps'] for r in runs]
            cyc = [r['cycles'] for r in runs if r['cycles'] is not None]
            gcyc = [r['gen_cycles'] for r in runs if r.get('gen_cycles')]
            gwr = [r['gen_writes'] for r in runs
                   if r.get('gen_writes') is not None]
            row = {'topo': key[0], 'ring': key[1], 'size': key[2],
                   'backend': b, 'n': len(mp), 'bad': nbad,
                   'median_mpps': statistics.median(mp),
                   'min_mpps': min(mp), 'max_mpps': max(mp),
                   'median_cycles': statistics.median(cyc) if cyc else None,
                   'median_gen_cycles': (statistics.median(gcyc) if gcyc
                                         else None),
                   'median_gen_writes': (statistics.median(gwr) if gwr
                                         else None),
                   'ratio_vre': None, 'pair_ratio_vre': None,
                   'gen_pair_ratio_vre': None}
            if b != 'vre' and vre:
                row['ratio_vre'] = (statistics.median(vre.values())
                                    / row['median_mpps']
                                    if row['median_mpps'] else None)
                prs = [vre[r['pair']] / r['mpps'] for r in runs
                       if r['pair'] in vre and r['mpps']]
                row['pair_ratio_vre'] = statistics.median(prs) if prs else None
                gprs = [vre_gen[r['pair']] / r['gen_cycles'] for r in runs
                        if r['pair'] in vre_gen and r.get('gen_cycles')]
                row['gen_pair_ratio_vre'] = (statistics.median(gprs) if gprs
                                             else None)
            out.append(row)
    return out


def fmt(v, f='{:.2f}'):
    return '-' if v is None else f.format(v)


def print_table(summary, machine=None):
    """cyc/pkt: the backend's busy cycles per packet; gen cyc: the
    generator's (its testpmd forwarding core's) busy cycles per packet
    through that backend; gen wr/kpkt: the generator's write system calls
    (kicks) per 1000 packets; gen VRE/peer: pairwise ratio of gen cyc."""
    log('')
    if machine and machine.get('line_rtt_ns'):
        log(line_summary(machine))
    log(f"{'topology':9} {'ring':6} {'size':>5} {'backend':7} {'n':>2} "
        f"{'bad':>3} "
        f"{'Mpps':>6} {'min':>6} {'max':>6} {'cyc/pkt':>8} {'gen cyc':>8} "
        f"{'gen wr/kpkt':>11} "
        f"{'VRE/peer':>8} {'pairwise':>8} {'gen VRE/peer':>12}")
    for r in summary:
        log(f"{r['topo']:9} {r['ring']:6} {r['size']:>5} {r['backend']:7} "
            f"{r['n']:>2} {r['bad']:>3} {fmt(r['median_mpps']):>6} {fmt(r['min_mpps']):>6} "
            f"{fmt(r['max_mpps']):>6} {fmt(r['median_cycles'], '{:.0f}'):>8} "
            f"{fmt(r.get('median_gen_cycles'), '{:.0f}'):>8} "
            f"{fmt(r.get('median_gen_writes'), '{:.1f}'):>11} "
            f"{fmt(r['ratio_vre']):>8} {fmt(r['pair_ratio_vre']):>8} "
            f"{fmt(r.get('gen_pair_ratio_vre')):>12}")


def write_csvs(out_dir, stamp, machine, rows, summary):
    raw = os.path.join(out_dir, f'{stamp}.csv')
    mcols = MACHINE_COLS
    cols = ['stamp', 'backend', 'ring', 'topo', 'size', 'pair', 'order',
            'mpps', 'cycles_per_pkt', 'gen_cycles_per_pkt',
            'gen_writes_per_kpkt', 'avg_frame',
            'per_second_mpps', 'loadavg', 'run_line_rtt_ns', 'excluded',
            'error'] + mcols
    with open(raw, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([stamp, r['backend'], r['ring'], r['topo'], r['size'],
                        r['pair'], r['order'], fmt(r['mpps'], '{:.4f}'),
                        fmt(r['cycles'], '{:.1f}'),
                        fmt(r.get('gen_cycles'), '{:.1f}'),
                        fmt(r.get('gen_writes'), '{:.2f}'),
                        fmt(r['avg_frame'], '{:.1f}'),
                        ' '.join(f'{x:.3f}' for x in r['per_sec']),
                        r['load'], fmt(r.get('line_rtt_ns'), '{:.0f}'),
                        int(r['flagged'] or r['mpps'] is None),
                        r['error']] + [machine.get(c, '') for c in mcols])
    summ = os.path.join(out_dir, f'{stamp}-summary.csv')
    scols = ['topo', 'ring', 'size', 'backend', 'n', 'bad', 'median_mpps',
             'min_mpps', 'max_mpps', 'median_cycles', 'median_gen_cycles',
             'median_gen_writes', 'ratio_vre', 'pair_ratio_vre',
             'gen_pair_ratio_vre']
    with open(summ, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(scols + mcols)
        for r in summary:
            w.writerow([fmt(r[c], '{:.4f}') if isinstance(r[c], float)
                        else fmt(r[c], '{}') for c in scols]
                       + [machine.get(c, '') for c in mcols])
    return raw, summ


def plot(out_dir, stamp, summary, machine):
    """Mpps by packet size, one panel per topology, a line per backend and
    ring. Needs gnuplot (gnuplot-nox)."""
    gp = shutil.which('gnuplot')
    if not gp:
        log('plot: gnuplot not found (apt-get install gnuplot-nox); skipped')
        return None
    topos = [t for t in ALL_TOPOS if any(r['topo'] == t for r in summary)]
    if not topos:
        return None
    data_dir = os.path.join(out_dir, f'{stamp}-plot')
    os.makedirs(data_dir, exist_ok=True)
    png = os.path.join(out_dir, f'{stamp}.png')
    cols = min(2, len(topos))
    nrows = (len(topos) + cols - 1) // cols
    title = (f"VRE throughput, {machine['cpu_model']}, {machine['cores']} "
             f"cores, {stamp}").replace('"', "'")
    script = [f'set terminal pngcairo size {640 * cols},{420 * nrows} '
              'font ",10"' if has_pngcairo(gp) else
              f'set terminal png size {640 * cols},{420 * nrows}',
              f'set output "{png}"',
              f'set multiplot layout {nrows},{cols} title "{title}"',
              'set xlabel "frame size (bytes)"', 'set ylabel "Mpps"',
              'set grid', 'set key top right', 'set yrange [0:*]',
              'set xtics (64, 512, 1024, 1518)', 'set xrange [0:1600]']
    for t in topos:
        series = []
        for b in ALL_BACKENDS:
            for ring in ALL_RINGS:
                pts = sorted((r['size'], r['median_mpps'], r['min_mpps'],
                              r['max_mpps']) for r in summary
                             if r['topo'] == t and r['backend'] == b
                             and r['ring'] == ring and r['n'])
                if not pts:
                    continue
                fn = os.path.join(data_dir, f'{t}-{b}-{ring}.dat')
                with open(fn, 'w') as f:
                    for p in pts:
                        f.write('%d %.4f %.4f %.4f\n' % p)
                dash, pt = (1, 7) if ring == 'split' else (2, 5)
                series.append(f'"{fn}" using 1:2:3:4 with yerrorlines '
                              f'lc rgb "{PLOT_COLOURS[b]}" dt {dash} pt {pt} '
                              f'title "{b} {ring}"')
        script.append(f'set title "{t}"')
        script.append('plot ' + ', '.join(series) if series else
                      'plot 0 notitle')
    script.append('unset multiplot')
    gpf = os.path.join(data_dir, 'plot.gp')
    with open(gpf, 'w') as f:
        f.write('\n'.join(script) + '\n')
    r = subprocess.run([gp, gpf], capture_output=True, text=True, timeout=60)
    if r.returncode:
        log(f'plot: gnuplot failed: {r.stderr.strip()}')
        return None
    return png


def plot_cycles(out_dir, stamp, summary, machine):
    """Busy cycles per packet, a panel per topology, a group of bars per
    ring and frame size: for each backend its own cycles (solid) and the
    generator's cycles per packet through it (hatched, same colour)."""
    gp = shutil.which('gnuplot')
    topos = [t for t in ALL_TOPOS if any(r['topo'] == t for r in summary)]
    if not gp or not topos:
        return None
    data_dir = os.path.join(out_dir, f'{stamp}-plot')
    os.makedirs(data_dir, exist_ok=True)
    png = os.path.join(out_dir, f'{stamp}-cycles.png')
    cols = min(2, len(topos))
    nrows = (len(topos) + cols - 1) // cols
    title = (f"busy cycles per packet: backend (solid), generator through it "
             f"(hatched); {machine['cpu_model']}, {stamp}").replace('"', "'")
    script = [f'set terminal pngcairo size {640 * cols},{400 * nrows} '
              'font ",10"' if has_pngcairo(gp) else
              f'set terminal png size {640 * cols},{400 * nrows}',
              f'set output "{png}"',
              f'set multiplot layout {nrows},{cols} title "{title}"',
              'set style data histograms',
              'set style histogram clustered gap 1',
              'set boxwidth 0.9', 'set datafile missing "-"',
              'set ylabel "cycles/packet"', 'set grid ytics',
              'set key top left', 'set yrange [0:*]']
    for t in topos:
        keys = sorted({(r['ring'], r['size']) for r in summary
                       if r['topo'] == t},
                      key=lambda k: (ALL_RINGS.index(k[0]), k[1]))
        fn = os.path.join(data_dir, f'cycles-{t}.dat')
        with open(fn, 'w') as f:
            for ring, size in keys:
                vals = []
                for b in ALL_BACKENDS:
                    r = next((x for x in summary if x['topo'] == t and
                              x['ring'] == ring and x['size'] == size and
                              x['backend'] == b), None)
                    for col in ('median_cycles', 'median_gen_cycles'):
                        v = r.get(col) if r else None
                        vals.append('-' if v is None else f'{v:.1f}')
                f.write(f'"{ring} {size}" ' + ' '.join(vals) + '\n')
        series = []
        for i, b in enumerate(ALL_BACKENDS):
            for j, what in enumerate(('own', 'generator')):
                col = 2 + 2 * i + j
                fill = 'fs solid 0.8' if j == 0 else 'fs pattern 4'
                series.append(f'"{fn}" using {col}:xtic(1) {fill} '
                              f'lc rgb "{PLOT_COLOURS[b]}" title "{b} {what}"')
        script.append(f'set title "{t}"')
        script.append('plot ' + ', '.join(series))
    script.append('unset multiplot')
    gpf = os.path.join(data_dir, 'cycles.gp')
    with open(gpf, 'w') as f:
        f.write('\n'.join(script) + '\n')
    r = subprocess.run([gp, gpf], capture_output=True, text=True, timeout=60)
    if r.returncode:
        log(f'plot: gnuplot failed: {r.stderr.strip()}')
        return None
    return png


def write_markdown(out_dir, stamp, machine, summary, backends):
    """<stamp>-table.md: README's table, a row per configuration: Mpps,
    pairwise VRE/peer ratios, each backend's busy cycles per packet and the
    generator's busy cycles per packet through it, with the machine's line
    round trip above it (figures from another machine are not comparable)."""
    peers = [b for b in backends if b != 'vre']
    by = {}
    for r in summary:
        by.setdefault((r['topo'], r['ring'], r['size']), {})[r['backend']] = r

    def cell(key, b, col, f='{:.2f}'):
        r = by[key].get(b)
        return '–' if not r or r.get(col) is None else f.format(r[col])
    head = (['config'] + [f'{b} Mpps' for b in backends]
            + [f'VRE/{p} pairwise' for p in peers]
            + [f'{b} cyc/pkt' for b in backends]
            + [f'gen cyc/pkt with {b}' for b in backends]
            + [f'gen VRE/{p}' for p in peers]
            + [f'gen kicks/kpkt with {b}' for b in backends])
    lines = [f"perf/bench {stamp}: {machine['cpu_model']}, "
             f"{machine['cores']} cores, load {machine['loadavg']} at the "
             f"start; DPDK {machine['dpdk']}, OVS {machine['ovs']}.", '']
    if machine.get('line_rtt_ns'):
        lines += [line_summary(machine) + '.', '']
    lines += ['| ' + ' | '.join(head) + ' |',
              '|' + ' --- |' * len(head)]
    for key in by:
        row = [f'{key[0]} {key[1]} {key[2]} B']
        row += [cell(key, b, 'median_mpps') for b in backends]
        row += [cell(key, p, 'pair_ratio_vre') for p in peers]
        row += [cell(key, b, 'median_cycles', '{:.0f}') for b in backends]
        row += [cell(key, b, 'median_gen_cycles', '{:.0f}') for b in backends]
        row += [cell(key, p, 'gen_pair_ratio_vre') for p in peers]
        row += [cell(key, b, 'median_gen_writes', '{:.1f}') for b in backends]
        lines.append('| ' + ' | '.join(row) + ' |')
    path = os.path.join(out_dir, f'{stamp}-table.md')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def has_pngcairo(gp):
    r = subprocess.run([gp, '-e', 'set terminal'], capture_output=True,
                       text=True, timeout=20)
    return 'pngcairo' in (r.stdout + r.stderr)


# ---------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog='perf/bench',
        description='Mpps of VRE and its peers behind one testpmd '
                    'virtio-user generator, alternating backends A B A B.')
    ap.add_argument('--quick', action='store_true',
                    help='2-minute smoke run: 1 pair, 64 and 1518 B, split '
                         'rings, every topology, 2 s windows')
    ap.add_argument('--pairs', type=int, default=5,
                    help='alternating pairs for loopback and xconnect (5)')
    ap.add_argument('--pairs-other', type=int, default=2,
                    help='alternating pairs for learn and oneway (2)')
    ap.add_argument('--sizes', default=','.join(map(str, ALL_SIZES)),
                    help='frame sizes with FCS (64,512,1518)')
    ap.add_argument('--rings', default=','.join(ALL_RINGS))
    ap.add_argument('--topos', default=','.join(ALL_TOPOS))
    ap.add_argument('--backends', default=','.join(DEFAULT_BACKENDS),
                    help='vre,dpdk,ovs (and vreb: --vreb-bin)')
    ap.add_argument('--seconds', type=int, default=3,
                    help='measured seconds per size, loopback and xconnect (3)')
    ap.add_argument('--seconds-other', type=int, default=2,
                    help='measured seconds per size, learn and oneway (2)')
    ap.add_argument('--warmup', type=float, default=0.8,
                    help='seconds before the first size is measured (0.8)')
    ap.add_argument('--settle', type=float, default=0.4,
                    help='seconds after switching sizes (0.4)')
    ap.add_argument('--tx-first', type=int, default=2,
                    help='bursts of 32 the generator injects per port (2)')
    ap.add_argument('--gen-cpu', type=int, default=0)
    ap.add_argument('--backend-cpu', type=int, default=1)
    ap.add_argument('--vre-bin', help='vre-switch binary '
                    '(default build/examples/vre-switch)')
    ap.add_argument('--vreb-bin', help='backend vreb: a second vre-switch '
                    'binary to compare with --vre-bin (A/B)')
    ap.add_argument('--out', default=os.path.join(ROOT, 'perf', 'results'),
                    help='results folder (perf/results)')
    ap.add_argument('--dry-run', action='store_true',
                    help='print the plan and the time it will take, run nothing')
    ap.add_argument('--keep-logs', action='store_true',
                    help='keep every run\'s logs, not just failed ones')
    ap.add_argument('--latency', action='store_true',
                    help='latency mode: round trip of single frames (p50, '
                         'p99) through each backend, with --inflight frames '
                         'in flight, instead of throughput; sizes default to '
                         '64, topologies to loopback,xconnect')
    ap.add_argument('--inflight', default='1,4',
                    help='--latency: frames in flight per measurement (1,4)')
    ap.add_argument('--lat-timeout-ms', type=int, default=100,
                    help='--latency: a frame not back after this is lost (100)')
    ap.add_argument('--latgen-bin', help='lat_gen binary '
                    '(default build/perf/lat_gen)')
    ap.add_argument('--lineprobe', help='lineprobe binary '
                    '(default build/perf/lineprobe, else compiled with cc)')
    a = ap.parse_args(argv)
    if a.latency:
        if a.sizes == ap.get_default('sizes'):
            a.sizes = '64'
        if a.topos == ap.get_default('topos'):
            a.topos = 'loopback,xconnect'
    if a.quick:
        a.pairs, a.pairs_other, a.seconds, a.seconds_other = 1, 1, 2, 2
        a.warmup, a.settle = 0.8, 0.4
        if a.sizes == ap.get_default('sizes'):
            a.sizes = '64,1518'
        if a.rings == ap.get_default('rings'):
            a.rings = 'split'

    def lst(s, allowed, conv=str):
        v = [conv(x) for x in s.split(',') if x]
        bad = [x for x in v if allowed and x not in allowed]
        if bad:
            ap.error(f'unknown {bad}; choose from {allowed}')
        return v
    a.sizes = lst(a.sizes, None, int)
    for s in a.sizes:
        if not 64 <= s <= 1518:
            ap.error('sizes must be 64..1518')
    a.rings = lst(a.rings, ALL_RINGS)
    a.topos = lst(a.topos, ALL_TOPOS)
    a.backends = lst(a.backends, ALL_BACKENDS)
    a.inflight = lst(a.inflight, None, int)
    if any(not 1 <= k <= 64 for k in a.inflight):
        ap.error('--inflight values must be 1..64')
    if a.latency:
        bad = [t for t in a.topos if t not in LATENCY_TOPOS]
        if bad:
            ap.error(f'--latency: {bad} send nothing back; choose from '
                     f'{LATENCY_TOPOS}')
    a.latgen_bin = a.latgen_bin or os.path.join(ROOT, 'build', 'perf',
                                                'lat_gen')
    a.lineprobe_path = None
    if min(a.seconds, a.seconds_other, a.pairs, a.pairs_other) < 1:
        ap.error('--seconds and --pairs must be >= 1')
    return a


def plan(cfg, backends):
    """The runs in order: per (topology, ring, size group), pairs of
    alternating backends; each run measures every size in turn."""
    runs = []
    for topo in cfg.topos:
        bs = [b for b in backends if b.supports(topo)]
        if not bs:
            continue
        pairs = (cfg.pairs if topo in HEADLINE_TOPOS or cfg.latency
                 else cfg.pairs_other)
        groups = [cfg.sizes]
        for ring in cfg.rings:
            for sizes in groups:
                for pair in range(pairs):
                    for order, b in enumerate(bs):
                        runs.append((topo, ring, sizes, pair, order, b))
    return runs


def estimate(cfg, runs):
    # Seen here: ~2 s to start, connect and stop both processes (OVS 0.7 s
    # more), ~0.15 s per size to switch and sample.
    t = 0.0
    for topo, ring, sizes, pair, order, b in runs:
        if cfg.latency:
            n = len(sizes) * len(cfg.inflight)
            t += 2.5 + cfg.warmup + (n - 1) * cfg.settle
            t += n * (cfg.seconds + 0.3) + (0.7 if b.name == 'ovs' else 0.0)
            continue
        secs = seconds_for(cfg, topo)
        t += 2.0 + cfg.warmup + (len(sizes) - 1) * cfg.settle
        t += len(sizes) * (secs + 0.15)
        t += 0.7 if b.name == 'ovs' else 0.0
    return t


def throughput_rows(res, b, ring, topo, sizes, pair, order, load, err):
    """CSV rows of one throughput run, and its progress-line parts."""
    rows, parts = [], []
    for s in sizes:
        r = res.get(s)
        rows.append({'backend': b.name, 'ring': ring, 'topo': topo,
                     'size': s, 'pair': pair, 'order': order,
                     'mpps': r['mpps'] if r else None,
                     'cycles': r['cycles'] if r else None,
                     'gen_cycles': r['gen_cycles'] if r else None,
                     'gen_writes': r.get('gen_writes') if r else None,
                     'avg_frame': r['avg_frame'] if r else None,
                     'per_sec': r['per_sec'] if r else [],
                     'load': load,
                     'flagged': bool(r and ('collapsed' in r['note']
                                            or 'avg frame' in r['note'])),
                     'error': err or (r['note'] if r else '')})
        if r:
            parts.append(f"{s}B {r['mpps']:6.2f}"
                         + (f" ({r['cycles']:.0f} cyc)" if r['cycles'] else '')
                         + (f" (gen {r['gen_cycles']:.0f}"
                            + (f", {r['gen_writes']:.1f} wr/kpkt"
                               if r.get('gen_writes') is not None else '')
                            + ')' if r['gen_cycles'] else '')
                         + (f" [{r['note']}]" if r['note'] else ''))
    return rows, parts


def latency_rows(cfg, res, b, ring, topo, sizes, pair, order, load, err):
    """Rows of one --latency run (one per size and in-flight count), and
    its progress-line parts."""
    rows, parts = [], []
    for s in sizes:
        for k in cfg.inflight:
            r = res.get((s, k))
            row = {'backend': b.name, 'ring': ring, 'topo': topo, 'size': s,
                   'inflight': k, 'pair': pair, 'order': order,
                   'loadavg': load, 'error': err or (r['note'] if r else '')}
            for c in LAT_KEYS:
                row[c] = r[c] if r else None
            rows.append(row)
            if r:
                parts.append(f"{s}B x{k} p50 {r['p50_us']:.2f} p99 "
                             f"{r['p99_us']:.2f} us"
                             + (f" [{r['note']}]" if r['note'] else ''))
    return rows, parts


def main(argv):
    cfg = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit('bench: run as root (hugepages, vhost-user sockets)')
    if not os.access(TESTPMD, os.X_OK):
        sys.exit('bench: dpdk-testpmd not found (apt-get install dpdk)')
    if os.cpu_count() and max(cfg.gen_cpu, cfg.backend_cpu) >= os.cpu_count():
        sys.exit('bench: --gen-cpu/--backend-cpu beyond this machine')
    backends = []
    for name in cfg.backends:
        b = BACKENDS[name](cfg)
        why = b.available()
        if why:
            log(f'skip {name}: {why}')
            continue
        backends.append(b)
    if not backends:
        sys.exit('bench: no backend available')
    if cfg.latency and not os.access(cfg.latgen_bin, os.X_OK):
        sys.exit(f'bench: {cfg.latgen_bin} not found (ninja -C build builds '
                 'perf/lat_gen; or --latgen-bin PATH)')
    runs = plan(cfg, backends)
    stamp = datetime.datetime.utcnow().strftime('%Y%m%d-%H%M%S')
    os.makedirs(cfg.out, exist_ok=True)
    machine = machine_info()
    machine['gen_cpu'], machine['backend_cpu'] = cfg.gen_cpu, cfg.backend_cpu
    if not cfg.dry_run:
        # First, before any of our processes load the CPUs.
        machine.update(line_probe(cfg, tempfile.gettempdir()))
    log_dir = os.path.join(cfg.out, f'{stamp}-logs')
    log(f"machine: {machine['cpu_model']}, {machine['cores']} cores, "
        f"hugepages {machine['hugepages']} ({machine['hugepages_free']} free), "
        f"load {machine['loadavg']}, dpdk {machine['dpdk']}, "
        f"ovs {machine['ovs']}")
    if machine.get('line_rtt_ns'):
        log(line_summary(machine))
    elif machine.get('line_probe'):
        log(f"line probe: {machine['line_probe']}")
    log(f"plan: {'latency, ' if cfg.latency else ''}{len(runs)} runs, "
        f"backends {[b.name for b in backends]}, "
        f"topologies {cfg.topos}, rings {cfg.rings}, sizes {cfg.sizes}, "
        + (f"in flight {cfg.inflight}, " if cfg.latency else '') +
        f"{cfg.seconds}/{cfg.seconds_other} s measured per size; about "
        f"{estimate(cfg, runs) / 60:.1f} min")
    if float(machine['loadavg']) > 1.0:
        log(f"warning: load average {machine['loadavg']} before starting: "
            'other work shares these CPUs; expect noisy absolute rates')
    for topo in cfg.topos:
        if not any(b.supports(topo) for b in backends):
            log(f'skip {topo}: no selected backend does it')
    if cfg.dry_run:
        for topo, ring, sizes, pair, order, b in runs:
            log(f'  {topo:8} {ring:6} {b.name:4} pair {pair + 1} sizes {sizes}')
        return 0
    with open(os.path.join(cfg.out, f'{stamp}-machine.txt'), 'w') as f:
        for k, v in machine.items():
            f.write(f'{k}: {v}\n')
        f.write('command: perf/bench ' + ' '.join(argv) + '\n')

    tmp = tempfile.mkdtemp(prefix='vre-bench.')

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started ignoring it
    rows = []
    t_start = time.monotonic()
    failures = 0
    try:
        for i, (topo, ring, sizes, pair, order, b) in enumerate(runs):
            run_dir = os.path.join(tmp, f'{i:03d}-{topo}-{ring}-{b.name}')
            err = ''
            load = open('/proc/loadavg').read().split()[0]
            # Before every run (~0.05 s): a hypervisor that moves a vCPU
            # changes the line round trip, and with it every rate, between
            # one run and the next (seen here: 105 ns, then 480 ns).
            line = line_probe(cfg, tmp, samples=200).get('line_rtt_ns')
            try:
                res = (one_latency_run if cfg.latency else one_run)(
                    cfg, b, ring, topo, sizes, run_dir)
            except BenchError as e:
                err = str(e)
                res = {}
            except Exception as e:  # a harness bug must not lose the results
                err = f'{type(e).__name__}: {e}'
                res = {}
            el = time.monotonic() - t_start
            if cfg.latency:
                new, parts = latency_rows(cfg, res, b, ring, topo, sizes,
                                          pair, order, load, err)
            else:
                new, parts = throughput_rows(res, b, ring, topo, sizes, pair,
                                             order, load, err)
            for r in new:
                r['line_rtt_ns'] = line
            rows += new
            if line and parts:
                parts.append(f'line {line:.0f} ns')
            log(f"[{i + 1:3}/{len(runs)} {int(el) // 60:2}:{int(el) % 60:02}] "
                f"{topo:8} {ring:6} {b.name:4} pair {pair + 1}: "
                + ('  '.join(parts) if parts else f'FAILED: {err}'))
            if err or cfg.keep_logs:
                failures += bool(err)
                shutil.copytree(run_dir, os.path.join(log_dir,
                                os.path.basename(run_dir)),
                                ignore=shutil.ignore_patterns('*.sock'),
                                dirs_exist_ok=True)
            shutil.rmtree(run_dir, ignore_errors=True)
    except KeyboardInterrupt:
        log('interrupted: stopping processes, writing partial results')
    finally:
        kill_all()
        shutil.rmtree(tmp, ignore_errors=True)
    end_probe = line_probe(cfg, tempfile.gettempdir())
    if end_probe.get('line_rtt_ns'):
        machine['line_rtt_end_ns'] = end_probe['line_rtt_ns']
        with open(os.path.join(cfg.out, f'{stamp}-machine.txt'), 'a') as f:
            f.write(f"line_probe_end: {end_probe['line_probe']}\n")
    names = [b.name for b in backends]
    pngs = []
    lines = [r['line_rtt_ns'] for r in rows if r.get('line_rtt_ns')]
    if lines:
        machine['run_line_rtt_min_ns'] = min(lines)
        machine['run_line_rtt_max_ns'] = max(lines)
        with open(os.path.join(cfg.out, f'{stamp}-machine.txt'), 'a') as f:
            f.write(f'line_rtt_per_run_ns: {min(lines):.0f}..{max(lines):.0f}\n')
        if max(lines) > 1.5 * min(lines):
            log(f'warning: the line round trip changed during the run '
                f'({min(lines):.0f}..{max(lines):.0f} ns; the hypervisor '
                f'moved a vCPU?): compare pairs whose line figures '
                f'(run_line_rtt_ns in the CSV) are alike')
    if cfg.latency:
        summary = summarize_latency(rows, names)
        print_latency_table(summary, machine)
        raw, summ = write_latency_csvs(cfg.out, stamp, machine, rows, summary)
    else:
        summary = summarize(rows, names)
        print_table(summary, machine)
        raw, summ = write_csvs(cfg.out, stamp, machine, rows, summary)
        md = write_markdown(cfg.out, stamp, machine, summary, names)
        pngs = [plot(cfg.out, stamp, summary, machine),
                plot_cycles(cfg.out, stamp, summary, machine)]
    log('')
    log(f'results: {raw}')
    log(f'summary: {summ}')
    if not cfg.latency:
        log(f'table:   {md}')
    for png in pngs:
        if png:
            log(f'plot:    {png}')
    if failures:
        log(f'{failures} runs failed; logs in {log_dir}')
    log(f'total {time.monotonic() - t_start:.0f} s')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
