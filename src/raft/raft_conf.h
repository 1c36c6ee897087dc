/* raft_conf.h: configuration helpers and quorum arithmetic (internal to
 * src/raft/). A joint configuration needs a majority of `voters` AND a
 * majority of `outgoing` for every decision: commit, election, read
 * confirmation, check-quorum and lease. */
#ifndef SHOAL_RAFT_CONF_H
#define SHOAL_RAFT_CONF_H

#include "raft/raft.h"

enum raft_vote_result { RAFT_VOTE_PENDING, RAFT_VOTE_LOST, RAFT_VOTE_WON };

bool raft_conf_is_joint(const struct raft_conf *conf);
/* Non-empty voters, no zero or duplicate ids, learners disjoint from voters. */
bool raft_conf_valid(const struct raft_conf *conf);
/* Distinct ids of all members (voters, outgoing, learners) into out (may be
 * NULL, else room for 3 * RAFT_NODES_MAX); returns their count. */
uint32_t raft_conf_members(const struct raft_conf *conf, uint64_t *out);
/* The largest value reached by a quorum, e.g. the commit index from match
 * indexes. */
uint64_t raft_conf_quorum_value(const struct raft_conf *conf,
                                uint64_t (*value_of)(void *, uint64_t), void *ctx);
/* vote_of returns >0 granted, <0 rejected, 0 not yet heard. */
enum raft_vote_result raft_conf_tally(const struct raft_conf *conf,
                                      int (*vote_of)(void *, uint64_t), void *ctx);

#endif
