#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Guest-to-guest TCP through a vhost-user switch: two QEMU guests (TCG,
256 MiB, the test guest of tests/guest) on two ports, the first sends MiB
of random data to the second with busybox nc, timed by the sender from
connect until the receiver had every byte. The switches, in turn (A B C ..
A B C ..., so a shared machine's drift hits each alike):

  vre           vre-switch, offloads offered (the default), server sockets
  vre-client    the same, vre-switch connecting to QEMU's sockets
  vre-nooffload vre-switch with offloads=off on both ports
  ovs-tso       Open vSwitch with DPDK, userspace-tso-enable=true
                (dpdkvhostuserclient ports: OVS connects, QEMU listens)
  ovs           the same without userspace TSO

  perf/guest-tcp [--mb 64] [--rounds 3] [--configs vre,vre-nooffload,...]
                 [--out perf/results] [--switch build/examples/vre-switch]

Needs root (OVS, hugepage-less DPDK in-memory), qemu-system-x86_64 and the
guest built by tests/guest/make-guest (done here). Writes STAMP-guest-tcp.csv
(one row per transfer) and STAMP-guest-tcp.txt (medians) in --out, and
prints the same. The switch and OVS poll on the last CPU; the guests run
where the kernel puts them.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (OVS_SCHEMA, OVS_VSWITCHD, BenchError, Proc, dpkg_version,  # noqa: E402
                   run_cmd, wait_paths)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL = ['vre', 'vre-client', 'vre-nooffload', 'ovs-tso', 'ovs']


def log(msg=''):
    print(msg, flush=True)


class Guests:
    """The two QEMU guests of one transfer. server: QEMU listens on its
    sockets (the switch connects)."""

    def __init__(self, d, cache, socks, mb, server):
        self.procs = []
        for n, role in enumerate(('send', 'recv')):
            me, peer = f'10.95.0.{n + 1}', f'10.95.0.{2 - n}'
            chardev = f'socket,id=c0,path={socks[n]}' + (',server=on,wait=off' if server
                                                         else ',reconnect=1')
            argv = ['timeout', '300', 'qemu-system-x86_64', '-machine', 'pc', '-accel', 'tcg',
                    '-smp', '1', '-m', '256M', '-object',
                    'memory-backend-memfd,id=mem,size=256M,share=on', '-numa', 'node,memdev=mem',
                    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
                    '-monitor', 'none', '-serial', f'file:{d}/guest{n}.log',
                    '-kernel', f'{cache}/vmlinuz', '-initrd', f'{cache}/initramfs.cpio.gz',
                    '-append', f'console=ttyS0 panic=-1 quiet vre.job=tcp vre.role={role} '
                    f'vre.ip={me}/24 vre.peer={peer} vre.mb={mb}',
                    '-chardev', chardev, '-netdev', 'vhost-user,id=n0,chardev=c0,queues=1',
                    '-device', f'virtio-net-pci,netdev=n0,mac=52:54:00:00:00:0{n + 1},vectors=0']
            self.procs.append(Proc(f'qemu{n}', argv, f'{d}/qemu{n}.out', line_buffer=False))
        self.d = d

    def wait(self, timeout):
        end = time.monotonic() + timeout
        for p in self.procs:
            try:
                p.p.wait(max(1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise BenchError('a guest did not finish in time')

    def result(self, mb):
        with open(f'{self.d}/guest0.log', errors='replace') as f:
            sent = re.search(r'VRE_TCP_SENT \d+ MiB in ([0-9.]+) s', f.read())
        with open(f'{self.d}/guest1.log', errors='replace') as f:
            got = re.search(r'VRE_TCP_RECV (\d+)', f.read())
        if not sent or not got:
            raise BenchError('no transfer (see the guest logs)')
        if int(got.group(1)) != mb * 1048576:
            raise BenchError(f'received {got.group(1)} bytes of {mb * 1048576}')
        return float(sent.group(1))

    def close(self):
        for p in self.procs:
            p.stop()


class Vre:
    def __init__(self, binary, offloads=True, client=False):
        self.binary, self.offloads, self.client = binary, offloads, client

    def start(self, d, socks):
        opt = '' if self.offloads else ',offloads=off'
        opt += ',client' if self.client else ''
        argv = [self.binary, '--mode', 'learn', '--ctl', 'none', '--stats-json', f'{d}/stats.json']
        for s in socks:
            argv += ['--vhost', s + opt]
        self.p = Proc('vre-switch', argv, f'{d}/vre-switch.out', line_buffer=False)
        if not self.client:
            wait_paths(socks, 20, self.p)

    def stats(self):
        """GSO frames the sender sent and their average size."""
        return self.gso

    def close(self, d):
        if self.p.alive():  # SIGINT: the counters go to the JSON file at exit
            os.killpg(self.p.p.pid, 2)
            try:
                self.p.p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.p.stop()
        self.gso = (0, 0)
        try:
            with open(f'{d}/stats.json') as f:
                o = json.load(f)['ports'][0]['offload']
            if o['gso_in']:
                self.gso = (o['gso_in'], o['gso_in_bytes'] / o['gso_in'])
        except (OSError, ValueError, KeyError):
            pass


class Ovs:
    """ovs-vswitchd-dpdk in a private folder and network namespace, as
    perf/bench runs it, with NORMAL forwarding over two
    dpdkvhostuserclient ports (OVS connects, QEMU listens)."""

    def __init__(self, tso, cpu):
        self.tso, self.cpu = tso, cpu

    def vsctl(self, *args):
        return run_cmd(['ovs-vsctl', f'--db=unix:{self.db}', '--timeout=15'] + list(args),
                       env=self.env)

    def start(self, d, socks):
        o = f'{d}/ovs'
        os.makedirs(o)
        self.db = f'{o}/db.sock'
        self.env = dict(os.environ, OVS_RUNDIR=o, OVS_DBDIR=o, OVS_LOGDIR=o, OVS_SYSCONFDIR=o)
        self.procs = []
        run_cmd(['ovsdb-tool', 'create', f'{o}/conf.db', OVS_SCHEMA], env=self.env)
        self.procs.append(Proc('ovsdb-server', [
            'ovsdb-server', f'{o}/conf.db', f'--remote=punix:{self.db}',
            f'--pidfile={o}/ovsdb-server.pid', f'--unixctl={o}/ovsdb-server.ctl',
            f'--log-file={o}/ovsdb-server.log'], f'{d}/ovsdb-server.out', env=self.env,
            line_buffer=False))
        wait_paths([self.db], 10, self.procs[0])
        self.vsctl('--no-wait', 'init')
        self.vsctl('--no-wait', 'set', 'Open_vSwitch', '.', 'other_config:dpdk-init=true',
                   f'other_config:dpdk-extra=--in-memory --no-pci --file-prefix vreovst{os.getpid()}',
                   f'other_config:pmd-cpu-mask={1 << self.cpu:#x}',
                   f'other_config:userspace-tso-enable={"true" if self.tso else "false"}')
        self.procs.append(Proc('ovs-vswitchd', [
            'unshare', '--net', OVS_VSWITCHD, f'unix:{self.db}', f'--pidfile={o}/vswitchd.pid',
            f'--unixctl={o}/vswitchd.ctl', f'--log-file={o}/vswitchd.log'],
            f'{d}/ovs-vswitchd.out', env=self.env, line_buffer=False))
        wait_paths([f'{o}/vswitchd.ctl'], 30, self.procs[1])
        self.vsctl('add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev')
        for i, s in enumerate(socks):
            self.vsctl('add-port', 'br0', f'vh{i}', '--', 'set', 'Interface', f'vh{i}',
                       'type=dpdkvhostuserclient', f'options:vhost-server-path={s}')

    def stats(self):
        return 0, 0

    def close(self, d):
        for p in reversed(self.procs):
            p.stop()


def one(cfg, backend, cache, mb, run_dir):
    d = tempfile.mkdtemp(prefix=f'{cfg}-', dir=run_dir)
    socks = [f'{d}/p0.sock', f'{d}/p1.sock']
    qemu_listens = cfg.startswith('ovs') or cfg == 'vre-client'
    guests = None
    try:
        if qemu_listens:
            guests = Guests(d, cache, socks, mb, server=True)
            wait_paths(socks, 20)
            backend.start(d, socks)
        else:
            backend.start(d, socks)
            guests = Guests(d, cache, socks, mb, server=False)
        guests.wait(280)
        secs = guests.result(mb)
    finally:
        if guests:
            guests.close()
        backend.close(d)
    gso, avg = backend.stats()
    return secs, gso, avg


def machine():
    """CPU model, cores and kernel: what the figures depend on."""
    model = '?'
    try:
        with open('/proc/cpuinfo') as f:
            m = re.search(r'^model name\s*:\s*(.*)$', f.read(), re.M)
            model = m.group(1) if m else model
    except OSError:
        pass
    return f'machine: {model}, {os.cpu_count()} cores, kernel {os.uname().release}'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--mb', type=int, default=64)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--configs', default=','.join(ALL))
    ap.add_argument('--out', default=os.path.join(ROOT, 'perf', 'results'))
    ap.add_argument('--switch', default=os.path.join(ROOT, 'build', 'examples', 'vre-switch'))
    ap.add_argument('--cache', default=os.path.join(ROOT, 'build', 'tests', 'guest', 'guest-cache'))
    a = ap.parse_args()
    configs = a.configs.split(',')
    for c in configs:
        if c not in ALL:
            ap.error(f'unknown config {c}')
    if os.geteuid() != 0 and any(c.startswith('ovs') for c in configs):
        ap.error('OVS needs root')
    for tool in ('qemu-system-x86_64',):
        if not shutil.which(tool):
            ap.error(f'{tool} missing')
    subprocess.run([os.path.join(ROOT, 'tests', 'guest', 'make-guest'), a.cache], check=True)
    cpu = os.cpu_count() - 1
    backends = {'vre': lambda: Vre(a.switch), 'vre-client': lambda: Vre(a.switch, client=True),
                'vre-nooffload': lambda: Vre(a.switch, offloads=False),
                'ovs-tso': lambda: Ovs(True, cpu), 'ovs': lambda: Ovs(False, cpu)}
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    os.makedirs(a.out, exist_ok=True)
    run_dir = tempfile.mkdtemp(prefix='vre-guest-tcp.')
    load0 = os.getloadavg()[0]
    rows = []
    log(f'guest-to-guest TCP, {a.mb} MiB per transfer, {a.rounds} rounds of {", ".join(configs)}')
    for r in range(a.rounds):
        for c in configs:
            t0 = time.monotonic()
            try:
                secs, gso, avg = one(c, backends[c](), a.cache, a.mb, run_dir)
                mbps = a.mb * 8 * 1048576 / secs / 1e6
                rows.append({'round': r + 1, 'config': c, 'seconds': secs, 'mbit_s': mbps,
                             'gso_frames': gso, 'gso_avg_bytes': avg, 'error': ''})
                extra = f', {gso} GSO frames of {avg:.0f} B on average' if gso else ''
                log(f'round {r + 1} {c:14s} {mbps:7.1f} Mbit/s ({secs:.2f} s{extra}; '
                    f'run {time.monotonic() - t0:.0f} s)')
            except BenchError as e:
                rows.append({'round': r + 1, 'config': c, 'seconds': '', 'mbit_s': '',
                             'gso_frames': '', 'gso_avg_bytes': '', 'error': str(e)})
                log(f'round {r + 1} {c:14s} FAILED: {e} (logs in {run_dir})')
    with open(os.path.join(a.out, f'{stamp}-guest-tcp.csv'), 'w') as f:
        keys = list(rows[0].keys())
        f.write(','.join(keys) + '\n')
        for row in rows:
            f.write(','.join(str(row[k]) for k in keys) + '\n')
    lines = [f'guest-to-guest TCP, {a.mb} MiB with busybox nc between two TCG guests '
             f'(256 MiB, 1 vCPU), {a.rounds} rounds, {stamp}',
             f'qemu {dpkg_version("qemu-system-x86")}, dpdk {dpkg_version("dpdk")}, '
             f'ovs {dpkg_version("openvswitch-switch-dpdk")}', machine(),
             f'load average (1 min) at the start {load0:.2f}, at the end '
             f'{os.getloadavg()[0]:.2f}',
             'command: perf/guest-tcp ' + ' '.join(sys.argv[1:]), '',
             f'{"config":14s} {"median":>9s} {"min":>8s} {"max":>8s}  Mbit/s']
    for c in configs:
        v = [r['mbit_s'] for r in rows if r['config'] == c and r['mbit_s'] != '']
        if v:
            lines.append(f'{c:14s} {statistics.median(v):9.1f} {min(v):8.1f} {max(v):8.1f}  '
                         f'({len(v)} runs)')
        else:
            lines.append(f'{c:14s} failed')
    with open(os.path.join(a.out, f'{stamp}-guest-tcp.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    log('\n' + '\n'.join(lines))
    log(f'\nwritten: {a.out}/{stamp}-guest-tcp.csv, .txt; logs in {run_dir}')
    return 0 if all(not r['error'] for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
