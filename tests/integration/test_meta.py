"""The meta group, group 0 (docs/cluster.md, "The meta group"): the map is
bootstrapped into it once, every node (voter or learner) installs it, its
epoch is what CLUSTER INFO reports, and a restart reads it from disk."""
import time

import redis

from test_sharding import wait_spread


def cluster_info(client):
    text = client.execute_command("CLUSTER", "INFO")
    if isinstance(text, bytes):
        text = text.decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def wait_map_installed(c, timeout=30):
    """Until every live node installed the map from group 0; returns the
    CLUSTER INFO of each."""
    deadline = time.time() + timeout
    while True:
        try:
            infos = {i: cluster_info(c.client(i, timeout=2)) for i in c.procs}
            if all(v["shoal_map_installed"] == "yes" for v in infos.values()):
                return infos
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            pass
        assert time.time() < deadline, "the map was not installed everywhere"
        time.sleep(0.1)


def proposals(c, i):
    return c.log(i).count("proposed the initial map")


def test_map_bootstrapped_once_on_voters_and_learners(make_cluster):
    # 4 nodes: group 0 has 3 voters (the lowest ids) and 1 learner
    c = make_cluster(4, ["--shards", "2", "--replicas", "3"], wait_leader=False)
    wait_spread(c, 2)
    infos = wait_map_installed(c)
    for i, info in infos.items():
        assert info["cluster_current_epoch"] == "1", (i, info)
        assert info["cluster_my_epoch"] == "1", (i, info)
        assert info["shoal_map_epoch"] == "1"
    leaders = {info["shoal_meta_leader"] for info in infos.values()}
    assert len(leaders) == 1 and leaders != {"0"}, leaders
    assert int(leaders.pop()) in (1, 2, 3)  # a voter leads
    for i in c.procs:
        meta = c.raft(i)["meta"]
        assert meta["voters"] == 3 and meta["learners"] == 1, meta
        assert meta["member"] == ("learner" if i == 4 else "voter"), (i, meta)
        assert c.raft(i)["map_epoch"] == 1
    # exactly one proposal of the initial map in the whole cluster
    assert sum(proposals(c, i) for i in c.ids) == 1
    # the map is the configured one: CLUSTER SLOTS of the learner and a
    # voter agree, two shards over all the slots
    slots = [sorted((r[0], r[1]) for r in c.client(i).execute_command("CLUSTER", "SLOTS"))
             for i in (1, 4)]
    assert slots[0] == slots[1] == [(0, 8191), (8192, 16383)]
    # the keyspace still works through the learner
    r = c.client(4)
    for k in range(20):
        assert r.set("k%d" % k, k)
    assert [int(v) for v in r.mget(["k%d" % k for k in range(20)])] == list(range(20))


def test_map_survives_restart_and_meta_leader_loss(make_cluster):
    c = make_cluster(3, ["--shards", "3"], wait_leader=False)
    wait_spread(c, 3)
    infos = wait_map_installed(c)
    leader = int(next(iter(infos.values()))["shoal_meta_leader"])
    # the meta leader dies: another voter takes group 0 over, nothing new is proposed
    c.kill(leader)
    deadline = time.time() + 30
    while True:
        views = {i: cluster_info(c.client(i, timeout=2)) for i in c.procs}
        lead = {v["shoal_meta_leader"] for v in views.values()}
        if len(lead) == 1 and lead.pop() not in ("0", str(leader)):
            break
        assert time.time() < deadline, views
        time.sleep(0.1)
    c.start(leader)
    # every node stops, then starts: each reads the map from its own disk
    for i in list(c.procs):
        c.kill(i)
    before = sum(proposals(c, i) for i in c.ids)
    assert before == 1
    for i in c.ids:
        c.start(i)
    wait_spread(c, 3)
    infos = wait_map_installed(c)
    assert all(v["cluster_current_epoch"] == "1" for v in infos.values())
    assert sum(proposals(c, i) for i in c.ids) == before  # read back, not proposed again
    for i in c.ids:
        assert "group 0: map at epoch 1 installed" in c.log(i).split("recovered:")[-1]
    r = c.client(1)
    assert r.set("after", "restart") and r.get("after") == b"restart"
