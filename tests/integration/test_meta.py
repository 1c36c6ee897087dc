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


def wait_epoch_everywhere(c, epoch, timeout=30):
    """Until every live node's CLUSTER INFO reports the map's epoch; returns
    the seconds it took."""
    t0 = time.time()
    while True:
        try:
            if all(cluster_info(c.client(i, timeout=2))["cluster_current_epoch"] == str(epoch)
                   for i in c.procs):
                return time.time() - t0
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            pass
        assert time.time() - t0 < timeout, "epoch %d not reached everywhere" % epoch
        time.sleep(0.005)


def wait_leader_of(c, group, node, timeout=30):
    deadline = time.time() + timeout
    while True:
        leaders = wait_spread(c, 3)
        if leaders[group] == node:
            return
        assert time.time() < deadline, "group %d still led by %d" % (group, leaders[group])
        time.sleep(0.1)


def test_prefer_changes_the_map_everywhere_and_moves_leadership(make_cluster):
    c = make_cluster(3, ["--shards", "3"], wait_leader=False)
    leaders = wait_spread(c, 3)
    infos = wait_map_installed(c)
    meta_leader = int(next(iter(infos.values()))["shoal_meta_leader"])
    old = leaders[1]
    new = next(i for i in c.ids if i != old)
    via = next(i for i in c.ids if i != meta_leader)  # forwarded to group 0's leader
    r = c.client(via)
    # refused, nothing changes
    for args, text in (((9, new), "no shard 9"), ((1, 99), "holds no replica"),
                       ((0, 1), "SHOAL.PREFER <group> <node-id>")):
        try:
            r.execute_command("SHOAL.PREFER", *args)
            raise AssertionError("accepted %r" % (args,))
        except redis.exceptions.ResponseError as e:
            assert text in str(e), e
    try:
        r.execute_command("SHOAL.PREFER", 1)
        raise AssertionError("accepted a missing argument")
    except redis.exceptions.ResponseError:
        pass
    # in the command table: COMMAND INFO, as redis-cli and cluster clients read it
    info = r.execute_command("COMMAND", "INFO", "shoal.prefer")
    assert info["shoal.prefer"]["arity"] == 3, info
    assert r.execute_command("SHOAL.PREFER", 1, new) == 2
    took = wait_epoch_everywhere(c, 2)
    print("epoch 2 on every node %.3f s after the reply" % took)
    assert took < 2.0, took  # one heartbeat (40 ms), with room for a loaded machine
    # the shard's leader hands over to its new preferred replica
    wait_leader_of(c, 1, new)
    for i in c.ids:
        slots = c.client(i).execute_command("CLUSTER", "SLOTS")
        first = [s for s in slots if s[0] == 0][0]
        assert first[2][1] == c.ports[new], (i, first)
    # every node restarts: epoch 2 and the preference come back from disk
    for i in list(c.procs):
        c.kill(i)
    for i in c.ids:
        c.start(i)
    wait_map_installed(c)
    wait_epoch_everywhere(c, 2)
    wait_leader_of(c, 1, new)
    r = c.client(new)
    assert r.execute_command("SHOAL.PREFER", 1, old) == 3
    wait_epoch_everywhere(c, 3)
    wait_leader_of(c, 1, old)
