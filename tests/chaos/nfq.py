"""Delay and reordering of packets without tc netem: an NFQUEUE handler.

This kernel has no netem qdisc, but it has the NFQUEUE target (iptables-nft,
xt compat) and nfnetlink_queue. An iptables rule in a node's namespace sends
its packets to queue Q; this process (run in the same namespace) holds each
one for a random delay in [min_ms, max_ms] and then accepts it. Packets with
shorter delays overtake earlier ones, so the stream is reordered as well as
delayed (TCP reassembles it; the node sees latency, jitter and
retransmissions). Raw netlink, no library: the protocol is small.

  nfq.py --queue Q --min-ms A --max-ms B --seed S [--seconds N]

On SIGTERM (or after N seconds) every held packet is accepted and it exits;
remove the iptables rule first. The queue is bound with fail-open, so an
overflowing queue passes packets instead of dropping them.
"""
import argparse
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 1
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


def attr(kind, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, kind) + payload + b"\0" * ((4 - n % 4) % 4)


def message(kind, queue, attrs, seq, flags=NLM_F_REQUEST):
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0) + body


class Queue:
    def __init__(self, num):
        self.num = num
        self.seq = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((0, 0))
        self.config(attr(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, 0)))
        self.config(attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)))
        self.config(attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 8192)))
        self.config(attr(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)) +
                    attr(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)))

    def config(self, attrs):
        self.seq += 1
        self.sock.send(message(NFQNL_MSG_CONFIG, self.num, [attrs], self.seq,
                               NLM_F_REQUEST | NLM_F_ACK))
        data = self.sock.recv(65536)
        _n, kind = struct.unpack_from("=IH", data)
        if kind == NLMSG_ERROR:
            err = struct.unpack_from("=i", data, 16)[0]
            if err != 0:
                raise OSError(-err, "nfqueue config: %s" % os.strerror(-err))

    def packets(self):
        """Ids of the packets in one datagram from the kernel."""
        data = self.sock.recv(1 << 20)
        ids = []
        off = 0
        while off + 16 <= len(data):
            n, kind = struct.unpack_from("=IH", data, off)
            if n < 16:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                a = off + 20
                while a + 4 <= off + n:
                    alen, akind = struct.unpack_from("=HH", data, a)
                    if alen < 4:
                        break
                    if (akind & 0x7FFF) == NFQA_PACKET_HDR:
                        ids.append(struct.unpack_from("!I", data, a + 4)[0])
                    a += (alen + 3) & ~3
            off += (n + 3) & ~3
        return ids

    def accept(self, pid):
        self.seq += 1
        self.sock.send(message(NFQNL_MSG_VERDICT, self.num,
                               [attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, pid))],
                               self.seq))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--queue", type=int, default=0)
    ap.add_argument("--min-ms", type=float, default=5)
    ap.add_argument("--max-ms", type=float, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=600)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__(0, True))
    q = Queue(a.queue)
    print("nfq: queue %d bound, delay %.0f-%.0f ms" % (a.queue, a.min_ms, a.max_ms), flush=True)
    held = []  # heap of (release time, seq, packet id)
    n = 0
    end = time.monotonic() + a.seconds
    while not stop[0] and time.monotonic() < end:
        now = time.monotonic()
        while held and held[0][0] <= now:
            q.accept(heapq.heappop(held)[2])
        wait = min(0.05, max(0.0, held[0][0] - now)) if held else 0.05
        try:
            r, _, _ = select.select([q.sock], [], [], wait)
        except InterruptedError:
            continue
        if not r:
            continue
        try:
            ids = q.packets()
        except OSError:  # ENOBUFS: the kernel dropped messages; go on
            continue
        for pid in ids:
            n += 1
            delay = rng.uniform(a.min_ms, a.max_ms) / 1000.0
            heapq.heappush(held, (time.monotonic() + delay, n, pid))
    for _, _, pid in held:
        q.accept(pid)
    print("nfq: %d packets delayed" % n, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
