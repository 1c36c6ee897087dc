"""Lua scripting (EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT): replies
compared byte for byte with a real redis-server (EVAL is run by the node, so
test_cmd cannot replay it), through a follower and through the leader, in
RESP2 and RESP3; redis-py's Script objects and pipelines; and replication:
a script's writes are one log entry, applied alike on every replica, and a
leader killed while a script runs loses the whole script. See
docs/scripting.md."""
import socket
import threading
import time

import pytest
import redis

# Each: a command as a list of arguments. Run in order on both servers (the
# state builds up alike). math.random's values are left out: Redis 7.0.15
# does not reseed per run, shoal does (docs/scripting.md).
SETUP = [
    ["SET", "str", "hello"], ["RPUSH", "{t}list", "a", "b", "c"], ["HSET", "{t}h", "f", "v"],
    ["SADD", "{t}set", "m"], ["ZADD", "{t}z", "1", "a", "2.5", "b"], ["SET", "{t}n", "10"],
]
SCRIPTS = [
    # replies of every Lua type
    ["EVAL", "return 1", "0"],
    ["EVAL", "return 3.99", "0"],
    ["EVAL", "return -3.9", "0"],
    ["EVAL", "return 'a string'", "0"],
    ["EVAL", "return true", "0"],
    ["EVAL", "return false", "0"],
    ["EVAL", "return nil", "0"],
    ["EVAL", "return {1,2,{3,'x'},nil,5}", "0"],
    ["EVAL", "return {}", "0"],
    ["EVAL", "return {ok='fine'}", "0"],
    ["EVAL", "return {ok='two\r\nlines'}", "0"],
    ["EVAL", "return {err='x'}", "0"],
    ["EVAL", "return {err='MYERR custom'}", "0"],
    ["EVAL", "return redis.status_reply('STATUS')", "0"],
    ["EVAL", "return redis.error_reply('MY bad')", "0"],
    ["EVAL", "return redis.error_reply('bad')", "0"],
    ["EVAL", "return redis.error_reply('-CODE with dash')", "0"],
    ["EVAL", "return redis.error_reply()", "0"],
    ["EVAL", "return redis.status_reply(1)", "0"],
    ["EVAL", "return {1, 'two', {ok='three'}, {err='ERR four'}, true, false}", "0"],
    ["EVAL", "return KEYS", "2", "k1", "k2", "a1", "a2", "a3"],
    ["EVAL", "return ARGV", "2", "k1", "k2", "a1", "a2", "a3"],
    ["EVAL", "return #KEYS + #ARGV", "0"],
    ["EVAL", "return 1e20", "0"],
    ["EVAL", "return 0/0", "0"],
    # redis.call and redis.pcall
    ["EVAL", "return redis.call('get', KEYS[1])", "1", "str"],
    ["EVAL", "return redis.call('get', 'nokey')", "0"],
    ["EVAL", "return redis.call('lrange', KEYS[1], 0, -1)", "1", "{t}list"],
    ["EVAL", "return redis.call('hgetall', KEYS[1])", "1", "{t}h"],
    ["EVAL", "return redis.call('zrange', KEYS[1], 0, -1, 'withscores')", "1", "{t}z"],
    ["EVAL", "return redis.call('zscore', KEYS[1], 'b')", "1", "{t}z"],
    ["EVAL", "return redis.call('incr', KEYS[1])", "1", "{t}n"],
    ["EVAL", "return redis.call('incrbyfloat', KEYS[1], 0.5)", "1", "{t}n"],
    ["EVAL", "return redis.call('set', KEYS[1], 3.1)", "1", "{t}f"],
    ["EVAL", "return redis.call('get', KEYS[1])", "1", "{t}f"],
    ["EVAL", "return redis.call('set', KEYS[1], 7)", "1", "{t}f"],
    ["EVAL", "return redis.call('get', KEYS[1])", "1", "{t}f"],
    ["EVAL", "return redis.call('ping')", "0"],
    ["EVAL", "return redis.call('echo', 'x')", "0"],
    ["EVAL", "return redis.call('type', KEYS[1])", "1", "{t}set"],
    ["EVAL", "redis.call('set', KEYS[1], 'a'); redis.call('append', KEYS[1], 'b'); "
             "return redis.call('get', KEYS[1])", "1", "{t}rw"],
    ["EVAL", "local n = redis.call('rpush', KEYS[1], 'x', 'y'); "
             "return {n, redis.call('lpop', KEYS[1])}", "1", "{t}l2"],
    ["EVAL", "return redis.call('lpush', KEYS[1], 1) + redis.call('get', KEYS[1])",
     "1", "{t}l3"],
    ["EVAL", "return redis.call('incr', KEYS[1])", "1", "str"],
    ["EVAL", "return redis.pcall('incr', KEYS[1])", "1", "str"],
    ["EVAL", "local r = redis.pcall('incr', KEYS[1]); return r['err']", "1", "str"],
    ["EVAL", "local r = redis.pcall('get', KEYS[1]); return type(r)", "1", "str"],
    ["EVAL", "return redis.call('nosuch')", "0"],
    ["EVAL", "return redis.pcall('nosuch')", "0"],
    ["EVAL", "return redis.call('get')", "0"],
    ["EVAL", "return redis.call()", "0"],
    ["EVAL", "return redis.pcall()", "0"],
    ["EVAL", "return redis.call('set', 'x', {})", "0"],
    ["EVAL", "return redis.call('subscribe', 'x')", "0"],
    ["EVAL", "return redis.call('multi')", "0"],
    ["EVAL", "return redis.call('eval', 'return 1', '0')", "0"],
    ["EVAL", "return redis.call('blpop', 'nolist', 0)", "0"],
    ["EVAL", "return redis.call('script', 'load', 'return 1')", "0"],
    ["EVAL", "return redis.call('exists', KEYS[1], KEYS[2])", "2", "{t}n", "{t}nokey"],
    ["EVAL", "redis.call('set', KEYS[1], 'v'); error('after a write')", "1", "{t}kept"],
    ["EVAL", "return redis.call('get', KEYS[1])", "1", "{t}kept"],
    ["EVAL", "redis.call('del', KEYS[1]); return redis.call('exists', KEYS[1])", "1", "{t}kept"],
    # RESP3 inside the script
    ["EVAL", "redis.setresp(3); return redis.call('hgetall', KEYS[1])", "1", "{t}h"],
    ["EVAL", "redis.setresp(3); return redis.call('zscore', KEYS[1], 'b')", "1", "{t}z"],
    ["EVAL", "redis.setresp(3); return redis.call('smembers', KEYS[1])", "1", "{t}set"],
    ["EVAL", "redis.setresp(3); return redis.call('get', 'nokey')", "0"],
    ["EVAL", "redis.setresp(3); return {true, false}", "0"],
    ["EVAL", "redis.setresp(3); local m = redis.call('hgetall', KEYS[1]); "
             "return m['map']['f']", "1", "{t}h"],
    ["EVAL", "return {double=3.5}", "0"],
    ["EVAL", "return {map={a=1}}", "0"],
    ["EVAL", "return {set={a=true}}", "0"],
    ["EVAL", "return redis.setresp(4)", "0"],
    ["EVAL", "return redis.setresp()", "0"],
    # errors and the sandbox
    ["EVAL", "error('boom')", "0"],
    ["EVAL", "error({err='TABLE err'})", "0"],
    ["EVAL", "error()", "0"],
    ["EVAL", "local x = nil; return x.y", "0"],
    ["EVAL", "return 1 +", "0"],
    ["EVAL", "x = ", "0"],
    ["EVAL", "a = 5", "0"],
    ["EVAL", "return a", "0"],
    ["EVAL", "return _G.undefined", "0"],
    ["EVAL", "rawset(_G, 'x', 1) return x", "0"],
    ["EVAL", "return rawget(_G, 'redis') ~= nil", "0"],
    ["EVAL", "redis.call = nil", "0"],
    ["EVAL", "string.x = 1", "0"],
    ["EVAL", "local t = {} t.x = 1 return t.x", "0"],
    ["EVAL", "local f = loadstring('return 1 + 1') return f()", "0"],
    ["EVAL", "local f = loadstring('y = 1') f() return 1", "0"],
    ["EVAL", "return type(getmetatable(_G))", "0"],
    ["EVAL", "return pcall(function() error('x') end)", "0"],
    ["EVAL", "local ok, e = pcall(function() error('x') end) return e", "0"],
    ["EVAL", "return select('#', 1, 2, 3)", "0"],
    ["EVAL", "return string.rep('ab', 3) .. string.upper('x')", "0"],
    ["EVAL", "return table.concat({1, 2, 3}, ',')", "0"],
    ["EVAL", "return tostring(tonumber('12'))", "0"],
    ["EVAL", "return math.floor(2.7) + math.max(1, 5)", "0"],
    ["EVAL", "return cjson.encode({1, 2, 'x'})", "0"],
    ["EVAL", "return cjson.decode('[1,2,3]')[2]", "0"],
    ["EVAL", "return bit.band(7, 3) + bit.bor(8, 1)", "0"],
    ["EVAL", "return bit.tohex(255)", "0"],
    ["EVAL", "return redis.sha1hex('')", "0"],
    ["EVAL", "return redis.sha1hex('abc')", "0"],
    ["EVAL", "return redis.sha1hex()", "0"],
    ["EVAL", "return redis.log(redis.LOG_WARNING, 'hi')", "0"],
    ["EVAL", "return redis.log(1)", "0"],
    ["EVAL", "return redis.log('a', 'b')", "0"],
    ["EVAL", "return redis.log(9, 'b')", "0"],
    ["EVAL", "return {redis.LOG_DEBUG, redis.LOG_NOTICE, redis.REPL_ALL}", "0"],
    ["EVAL", "return redis.replicate_commands()", "0"],
    ["EVAL", "redis.set_repl(redis.REPL_ALL) return 1", "0"],
    ["EVAL", "return redis.set_repl(9)", "0"],
    ["EVAL", "return math.randomseed(1)", "0"],
    ["EVAL", "return type(math.random())", "0"],
    ["EVAL", "return math.random(0)", "0"],
    ["EVAL", "return math.random(1, 2, 3)", "0"],
    ["EVAL", "return {type(os), type(io)}", "0"],
    ["EVAL", "return print", "0"],
    ["EVAL", "return type(debug)", "0"],
    ["EVAL", "return type(loadfile)", "0"],
    ["EVAL", "return dofile('/etc/passwd')", "0"],
    ["EVAL", "return require('os')", "0"],
    ["EVAL", "return type(coroutine.create(function() end))", "0"],
    ["EVAL", "return type(unpack)", "0"],
    # argument errors
    ["EVAL", "return 1", "2", "a"],
    ["EVAL", "return 1", "-1"],
    ["EVAL", "return 1", "x"],
    ["EVAL", "return 1"],
    ["EVALSHA", "abc", "0"],
    ["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"],
    # the read-only forms
    ["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "str"],
    ["EVAL_RO", "return redis.call('set', KEYS[1], 1)", "1", "str"],
    ["EVAL_RO", "return redis.pcall('del', KEYS[1])", "1", "str"],
    # the cache
    ["SCRIPT", "LOAD", "return 'loaded'"],
    ["EVALSHA", "8a8e4f5ae7dd6e0c1b2b4ddd06fcd4bc7b5bdae5", "0"],
    ["SCRIPT", "LOAD", "return ARGV[1] .. KEYS[1]"],
    ["SCRIPT", "EXISTS", "8a8e4f5ae7dd6e0c1b2b4ddd06fcd4bc7b5bdae5", "nosuch",
     "8A8E4F5AE7DD6E0C1B2B4DDD06FCD4BC7B5BDAE5"],
    ["EVALSHA", "8A8E4F5AE7DD6E0C1B2B4DDD06FCD4BC7B5BDAE5", "0"],
    ["EVALSHA_RO", "8a8e4f5ae7dd6e0c1b2b4ddd06fcd4bc7b5bdae5", "0"],
    ["SCRIPT", "LOAD", "return 1 +"],
    ["SCRIPT", "LOAD"],
    ["SCRIPT", "EXISTS"],
    ["SCRIPT", "KILL"],
    ["SCRIPT", "KILL", "x"],
    ["SCRIPT", "FOO"],
    ["SCRIPT", "HELP"],
    ["SCRIPT", "FLUSH", "bad"],
    ["SCRIPT", "FLUSH", "SYNC", "extra"],
    ["SCRIPT", "FLUSH"],
    ["SCRIPT", "EXISTS", "8a8e4f5ae7dd6e0c1b2b4ddd06fcd4bc7b5bdae5"],
    ["EVALSHA", "8a8e4f5ae7dd6e0c1b2b4ddd06fcd4bc7b5bdae5", "0"],
    ["SCRIPT", "FLUSH", "ASYNC"],
    # the keyspace after all that
    ["MGET", "{t}n", "{t}f", "{t}rw", "{t}kept"],
    ["LRANGE", "{t}l2", "0", "-1"],
]
RESP3_SCRIPTS = [
    ["EVAL", "return true", "0"],
    ["EVAL", "return false", "0"],
    ["EVAL", "return nil", "0"],
    ["EVAL", "redis.setresp(3); return {true, false}", "0"],
    ["EVAL", "redis.setresp(3); return redis.call('hgetall', KEYS[1])", "1", "{t}h"],
    ["EVAL", "redis.setresp(3); return redis.call('zscore', KEYS[1], 'b')", "1", "{t}z"],
    ["EVAL", "redis.setresp(3); return redis.call('get', 'nokey')", "0"],
    ["EVAL", "return redis.call('hgetall', KEYS[1])", "1", "{t}h"],
    ["EVAL", "return {double=3.5}", "0"],
    ["EVAL", "return {map={a=1}}", "0"],
    ["EVAL", "return {set={a=true}}", "0"],
    ["EVAL", "return {1, {ok='x'}, {err='E y'}}", "0"],
    ["EVAL", "error('boom')", "0"],
]


# struct and cmsgpack (src/script/lua_struct.c, lua_msgpack.c): values, bounds
# and every error path, compared byte for byte with redis-server 7.0.
def E(body, *args):
    return ["EVAL", body, "0"] + list(args)

LIBS = [
    E("return struct.pack('>i', 1)"),
    E("return struct.pack('<i', -2)"),
    E("return struct.pack('bBhHlLT', -1, 255, -300, 65000, -5, 7, 9)"),
    E("return struct.pack('>bBhHlLT', -1, 255, -300, 65000, -5, 7, 9)"),
    E("return struct.pack('i1i2i3i5i7i8', 1, -2, 3, -4, 5, -6)"),
    E("return struct.pack('<i10', -2)"),
    E("return struct.pack('>I16', 258)"),
    E("return struct.pack('!4bi', 1, 2)"),
    E("return struct.pack('!bd', 1, 2.5)"),
    E("return struct.pack('!2bi', 1, 2)"),
    E("return struct.pack('bxh', 1, 2)"),
    E("return struct.pack('f', 1.5)"),
    E("return struct.pack('>f', 1.5)"),
    E("return struct.pack('d', -0.1)"),
    E("return struct.pack('>d', 1e300)"),
    E("return struct.pack('c3', 'abcdef')"),
    E("return struct.pack('c0', 'abcdef')"),
    E("return struct.pack('s', 'abc')"),
    E("return struct.pack('s s', 'a', 'b')"),
    E("return struct.pack('i', 3.7)"),
    E("return struct.pack('i', -3.7)"),
    E("return struct.pack('I', 4294967295)"),
    E("return struct.pack('I', 4294967296)"),
    E("return struct.pack('l', 2^63)"),
    E("return struct.pack('l', -2^63)"),
    E("return struct.pack('L', 2^64)"),
    E("return struct.pack('i', 0/0)"),
    E("return struct.pack('c5', 'ab')"),
    E("return struct.pack('q', 1)"),
    E("return struct.pack('i', 'x')"),
    E("return struct.pack('i')"),
    E("return struct.pack()"),
    E("return struct.pack('i33', 1)"),
    E("return struct.pack('i99999999999', 1)"),
    E("return struct.pack('!3i', 1)"),
    E("return struct.pack('!0i', 1)"),
    E("return struct.pack('c2000000000', 'x')"),
    E("return struct.pack('', 1)"),
    E("return {struct.unpack('>i', struct.pack('>i', 123456))}"),
    E("return {struct.unpack('<i', struct.pack('<i', -123456))}"),
    E("return {struct.unpack('bBhHlLT', struct.pack('bBhHlLT', -1, 255, -300, 65000, -5, 7, 9))}"),
    E("return {struct.unpack('>bBhHlLT', struct.pack('>bBhHlLT', -1, 255, -300, 65000, -5, 7, 9))}"),
    E("return {struct.unpack('i1i2i3i5i7i8', struct.pack('i1i2i3i5i7i8', 1, -2, 3, -4, 5, -6))}"),
    E("return {struct.unpack('I1I2I3I5I7', struct.pack('i1i2i3i5i7', -1, -2, -3, -4, -5))}"),
    E("return {struct.unpack('>i16', string.rep(string.char(255), 16))}"),
    E("return {struct.unpack('<i9', string.rep(string.char(255), 8) .. string.char(1))}"),
    E("return {struct.unpack('<I12', string.rep(string.char(1), 12))}"),
    E("return {struct.unpack('!4bi', struct.pack('!4bi', 1, 2))}"),
    E("return {struct.unpack('bxh', struct.pack('bxh', 1, 2))}"),
    E("return tostring(struct.unpack('f', struct.pack('f', 1.5)))"),
    E("return tostring(struct.unpack('>d', struct.pack('>d', -0.1)))"),
    E("return {struct.unpack('c3', 'abcdef')}"),
    E("return {struct.unpack('c3', 'abcdef', 3)}"),
    E("return {struct.unpack('bc0', string.char(3) .. 'abcdef')}"),
    E("return {struct.unpack('c0', 'ab')}"),
    E("return {struct.unpack('bc0', string.char(9) .. 'ab')}"),
    E("return {struct.unpack('s', 'abc' .. string.char(0) .. 'z')}"),
    E("return {struct.unpack('ss', 'a' .. string.char(0) .. 'bc' .. string.char(0))}"),
    E("return struct.unpack('s', 'abc')"),
    E("return {struct.unpack('i', 'ab')}"),
    E("return {struct.unpack('i', 'abcd', 0)}"),
    E("return {struct.unpack('i', 'abcd', -1)}"),
    E("return {struct.unpack('i', 'abcd', 2)}"),
    E("return {struct.unpack('i', 'abcdabcd', 5)}"),
    E("return {struct.unpack('x', '', 1)}"),
    E("return {struct.unpack('', 'abc')}"),
    E("return {struct.unpack('q', 'abc')}"),
    E("return struct.unpack('i')"),
    E("return struct.unpack()"),
    E("return {struct.unpack(string.rep('b', 9000), string.rep('a', 9000))}"),
    E("return struct.size('bhilfdT')"),
    E("return struct.size('!bhilfd')"),
    E("return struct.size('!2bi')"),
    E("return struct.size('c20x')"),
    E("return struct.size('i16')"),
    E("return struct.size('s')"),
    E("return struct.size('c0')"),
    E("return struct.size('!3i')"),
    E("return struct.size('q')"),
    E("return struct.size('?')"),
    E("return struct.size('i33')"),
    E("return struct.size()"),
    E("struct.x = 1"),
    E("return type(struct)"),
    # cmsgpack
    E("return cmsgpack.pack(1)"),
    E("return cmsgpack.pack(0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296)"),
    E("return cmsgpack.pack(-1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649)"),
    E("return cmsgpack.pack(2^63, -2^63, 2^64, 1e20)"),
    E("return cmsgpack.pack(1.5, 0.1, -0.25, 1/0, -1/0)"),
    E("return cmsgpack.pack(0/0)"),
    E("return cmsgpack.pack(nil, true, false)"),
    E("return cmsgpack.pack('')"),
    E("return cmsgpack.pack(string.rep('a', 31))"),
    E("return cmsgpack.pack(string.rep('a', 32))"),
    E("return cmsgpack.pack(string.rep('a', 255))"),
    E("return cmsgpack.pack(string.rep('a', 256))"),
    E("return cmsgpack.pack(string.rep('a', 65536))"),
    E("return cmsgpack.pack({})"),
    E("return cmsgpack.pack({1, 2, 3})"),
    E("return cmsgpack.pack({1, nil, 3})"),
    E("return cmsgpack.pack({[1]=1, [2]=2, [4]=4})"),
    E("return cmsgpack.pack({a=1})"),
    E("return cmsgpack.pack({a=1, b={c={1, 2, {d='e'}}}})"),
    E("return cmsgpack.pack({[1.5]=1})"),
    E("return cmsgpack.pack({[0]=1})"),
    E("local t = {} for i = 1, 16 do t[i] = i end return cmsgpack.pack(t)"),
    E("local t = {} for i = 1, 70000 do t[i] = i % 200 end return cmsgpack.pack(t)"),
    E("local t = {} for i = 1, 20 do t['k' .. i] = i end return cmsgpack.pack(t)"),
    E("local t = {} for i = 1, 5000 do t['k' .. i] = 1 end return #cmsgpack.pack(t)"),
    E("local t = {} local c = t for i = 1, 30 do c[1] = {} c = c[1] end return cmsgpack.pack(t)"),
    E("local t = {} t[1] = t return cmsgpack.pack(t)"),
    E("return cmsgpack.pack(print)"),
    E("return cmsgpack.pack(cmsgpack.pack)"),
    E("return cmsgpack.pack(coroutine.create(function() end))"),
    E("return cmsgpack.pack()"),
    E("return cmsgpack.pack(1, 'a', {2})"),
    E("return {cmsgpack.unpack(cmsgpack.pack(1, 'a', {2}, {x='y'}, true))}"),
    E("return {cmsgpack.unpack(cmsgpack.pack(0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296))}"),
    E("return {cmsgpack.unpack(cmsgpack.pack(-1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649))}"),
    E("local t = {cmsgpack.unpack(cmsgpack.pack(2^63, -2^63, 2^64, 1e20, 1.5, 0.1))} for i = 1, #t do t[i] = tostring(t[i]) end return t"),
    E("return cmsgpack.unpack(string.char(0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0)) ~= nil"),
    E("return {cmsgpack.unpack(string.char(0xc0, 0xc2, 0xc3, 5))}"),
    E("return {cmsgpack.unpack(string.char(0xd9, 2, 65, 66, 0xda, 0, 1, 67, 0xdb, 0, 0, 0, 1, 68))}"),
    E("return {cmsgpack.unpack(string.char(0xdc, 0, 2, 1, 2, 0xdd, 0, 0, 0, 1, 3))}"),
    E("return cmsgpack.unpack(string.char(0xde, 0, 1, 0xa1, 65, 1))['A']"),
    E("return cmsgpack.unpack(string.char(0xdf, 0, 0, 0, 1, 0xa1, 65, 2))['A']"),
    E("return {cmsgpack.unpack(string.char(0xcc, 200, 0xcd, 1, 0, 0xce, 0, 1, 0, 0, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0))}"),
    E("return {cmsgpack.unpack(string.char(0xd0, 0x80, 0xd1, 0x80, 0, 0xd2, 0x80, 0, 0, 0, 0xe0, 0xff))}"),
    E("return tostring(cmsgpack.unpack(string.char(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0)))"),
    E("return tostring(cmsgpack.unpack(string.char(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)))"),
    E("return tostring(cmsgpack.unpack(string.char(0xca, 0x3f, 0xc0, 0, 0)))"),
    E("return {cmsgpack.unpack('')}"),
    E("return cmsgpack.unpack(string.char(0xc1))"),
    E("return cmsgpack.unpack(string.char(0xc4, 1, 65))"),
    E("return cmsgpack.unpack(string.char(0xc7, 1, 1, 65))"),
    E("return cmsgpack.unpack(string.char(0xd4, 1, 65))"),
    E("return cmsgpack.unpack(string.char(0xcd, 1))"),
    E("return cmsgpack.unpack(string.char(0xa5, 65))"),
    E("return cmsgpack.unpack(string.char(0xd9))"),
    E("return cmsgpack.unpack(string.char(0xd9, 5, 65))"),
    E("return cmsgpack.unpack(string.char(0xdb, 0xff, 0xff, 0xff, 0xff, 65))"),
    E("return cmsgpack.unpack(string.char(0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2))"),
    E("return cmsgpack.unpack(string.char(0xdf, 0xff, 0xff, 0xff, 0xff, 1, 2))"),
    E("return cmsgpack.unpack(string.char(0x93, 1, 2))"),
    E("return cmsgpack.unpack(string.char(0x81, 0xc0, 1))"),
    E("return cmsgpack.unpack(string.char(0x81, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0, 1))"),
    E("return cmsgpack.unpack(5)"),
    E("return cmsgpack.unpack()"),
    E("return #{cmsgpack.unpack(string.rep(string.char(1), 7998))}"),
    E("return #{cmsgpack.unpack(string.rep(string.char(1), 7999))}"),
    E("return #{cmsgpack.unpack(string.rep(string.char(1), 8000))}"),
    E("return type(cmsgpack.unpack(string.rep(string.char(0x91), 3998) .. string.char(1)))"),
    E("return type(cmsgpack.unpack(string.rep(string.char(0x91), 3999) .. string.char(1)))"),
    E("return type(cmsgpack.unpack(string.rep(string.char(0x91), 4000) .. string.char(1)))"),
    E("return type(cmsgpack.unpack(string.rep(string.char(0x81, 1), 3998) .. string.char(1)))"),
    E("return type(cmsgpack.unpack(string.rep(string.char(0x81, 1), 3999) .. string.char(1)))"),
    E("return type(cmsgpack.unpack(string.rep(string.char(0x81, 1), 4000) .. string.char(1)))"),
    E("return type(cmsgpack.unpack(string.rep(string.char(0x91), 100000)))"),
    E("return {cmsgpack.unpack_one(string.char(1, 2))}"),
    E("return {cmsgpack.unpack_one(string.char(1, 2), 1)}"),
    E("return {cmsgpack.unpack_one(string.char(1, 2), 2)}"),
    E("return {cmsgpack.unpack_one(string.char(1, 2), 3)}"),
    E("return {cmsgpack.unpack_one(string.char(1, 2), -1)}"),
    E("return {cmsgpack.unpack_one('')}"),
    E("return {cmsgpack.unpack_one(string.char(0x92, 1))}"),
    E("return {cmsgpack.unpack_limit(string.char(1, 2, 3), 2)}"),
    E("return {cmsgpack.unpack_limit(string.char(1, 2, 3), 2, 1)}"),
    E("return {cmsgpack.unpack_limit(string.char(1, 2, 3), 5)}"),
    E("return {cmsgpack.unpack_limit(string.char(1, 2, 3), 0, 0)}"),
    E("return {cmsgpack.unpack_limit(string.char(1, 2, 3), 0, 1)}"),
    E("return {cmsgpack.unpack_limit(string.char(1, 2), -1)}"),
    E("return {cmsgpack.unpack_limit('a')}"),
    E("return {cmsgpack.unpack_limit('a', 'x')}"),
    E("return cmsgpack._VERSION"),
    E("cmsgpack.pack = nil"),
    E("return cjson.encode(cmsgpack.unpack(cmsgpack.pack({a={1,2,3},b='x'})))"),
]


class Raw:
    """A connection that returns each reply's raw bytes."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.s.makefile("rb")

    def send(self, args):
        args = [a if isinstance(a, bytes) else a.encode() for a in args]
        self.s.sendall(b"*%d\r\n" % len(args) +
                       b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))

    def read(self):
        line = self.f.readline()
        kind = line[:1]
        if kind in b"+-:_,#(":
            return line
        if kind in b"$=!":
            n = int(line[1:-2])
            return line if n < 0 else line + self.f.read(n + 2)
        n = int(line[1:-2])
        if n < 0:
            return line
        per = 2 if kind == b"%" else 1
        return line + b"".join(self.read() for _ in range(n * per))

    def run(self, args):
        self.send(args)
        return self.read()

    def close(self):
        self.s.close()


def replies(port, commands, resp3=False):
    r = Raw(port)
    if resp3:
        r.run(["HELLO", "3"])
    out = [r.run(c) for c in commands]
    r.close()
    return out


def compare(ours, theirs, commands):
    diff = [(c, o, t) for c, o, t in zip(commands, ours, theirs) if o != t]
    assert not diff, "%d of %d differ, first: %r" % (len(diff), len(commands), diff[:3])


@pytest.mark.parametrize("through", ["follower", "leader"])
def test_eval_replies_match_redis_byte_for_byte(cluster, redis_server, through):
    node = cluster.followers()[0] if through == "follower" else cluster.leader()
    for c in SETUP:
        cluster.client(node).execute_command(*c)
        redis.Redis(port=redis_server).execute_command(*c)
    theirs = replies(redis_server, SCRIPTS)
    ours = replies(cluster.ports[node], SCRIPTS)
    compare(ours, theirs, SCRIPTS)
    theirs3 = replies(redis_server, RESP3_SCRIPTS, resp3=True)
    ours3 = replies(cluster.ports[node], RESP3_SCRIPTS, resp3=True)
    compare(ours3, theirs3, RESP3_SCRIPTS)


def test_struct_and_cmsgpack_match_redis_byte_for_byte(cluster, redis_server):
    node = cluster.followers()[0]
    compare(replies(cluster.ports[node], LIBS), replies(redis_server, LIBS), LIBS)


def test_redis_py_scripts_and_pipelines_through_leader_and_follower(cluster):
    lead = cluster.leader()
    fol = cluster.followers()[0]
    for node in (lead, fol):
        for i in cluster.procs:  # each node has its own cache, as in Redis Cluster
            cluster.client(i).script_flush()
        r = cluster.client(node)
        incr = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
        assert incr(keys=["c%d" % node], args=[5]) == 5
        assert incr(keys=["c%d" % node], args=[2]) == 7
        assert r.evalsha(incr.sha, 1, "c%d" % node, 1) == 8
        assert r.script_exists(incr.sha) == [True]
        r.script_flush()
        assert r.script_exists(incr.sha) == [False]
        assert incr(keys=["c%d" % node], args=[1]) == 9  # NOSCRIPT, loaded again
        with pytest.raises(redis.exceptions.NoScriptError):
            r.evalsha("0" * 40, 0)
        with pytest.raises(redis.exceptions.ResponseError, match="user_script:1: nope"):
            r.eval("error('nope')", 0)
        p = r.pipeline(transaction=False)
        for i in range(20):
            incr(keys=["p%d" % node], args=[1], client=p)
            p.get("p%d" % node)
        got = p.execute()
        assert got == [x for i in range(1, 21) for x in (i, str(i).encode())]
    # every replica holds the same counters
    for i in cluster.procs:
        r = cluster.client(i)
        r.execute_command("READONLY")
        deadline = time.time() + 10
        while r.get("p%d" % fol) != b"20" and time.time() < deadline:
            time.sleep(0.05)
        assert [r.get("c%d" % lead), r.get("c%d" % fol)] == [b"9", b"9"], i
        assert [r.get("p%d" % lead), r.get("p%d" % fol)] == [b"20", b"20"], i


def test_time_in_a_script_is_the_runs_clock(cluster):
    """redis.call('TIME') answers as Redis's (seconds, microseconds) with the
    time the run began on the leader; a write made with it is replicated
    as written, so every replica holds the same value."""
    fol = cluster.followers()[0]
    r = cluster.client(fol)
    t0 = time.time()
    got = r.eval("local t = redis.call('TIME'); redis.call('SET', KEYS[1], t[1]); "
                 "return {t, redis.call('TIME')}", 1, "tk")
    (sec, usec), again = got
    assert abs(int(sec) - t0) < 5 and 0 <= int(usec) < 1000000
    assert again == [sec, usec]  # one time for the whole run
    settle(cluster)
    for i in cluster.procs:
        c = cluster.client(i)
        c.execute_command("READONLY")
        assert c.get("tk") == sec, i


def applied(cluster, i):
    return cluster.raft(i)["applied_index"]


def settle(cluster):
    """Waits until every replica applied the leader's last entry."""
    lead = cluster.leader()
    last = cluster.raft(lead)["last_index"]
    for i in cluster.procs:
        cluster.wait_applied(i, last)
    return last


def test_script_writes_are_one_entry_on_every_replica(cluster):
    """A script of 200 writes (and reads of its own writes, an SPOP, an
    expiry) is one log entry, and every replica ends with the leader's
    values: the leader never applied the writes outside that entry."""
    lead = cluster.leader()
    r = cluster.client(lead)
    r.sadd("{s}pool", *range(50))
    r.set("{s}ctr", 100)
    before = settle(cluster)
    script = """
        local n = 0
        for i = 1, 100 do
          redis.call('incr', KEYS[1])
          redis.call('rpush', KEYS[2], redis.call('get', KEYS[1]))
        end
        local popped = redis.call('spop', KEYS[3], 5)
        redis.call('set', KEYS[4], 'x', 'EX', 1000)
        return {redis.call('get', KEYS[1]), redis.call('llen', KEYS[2]), #popped}
    """
    try:
        got = r.eval(script, 4, "{s}ctr", "{s}list", "{s}pool", "{s}tmp")
    except redis.exceptions.ResponseError as e:
        got = e
    after = settle(cluster)
    states = {}
    for i in cluster.procs:
        c = cluster.client(i)
        c.execute_command("READONLY")
        states[i] = (c.get("{s}ctr"), c.lrange("{s}list", 0, -1), sorted(c.smembers("{s}pool")),
                     c.ttl("{s}tmp") > 900)
    for i in cluster.procs:
        assert states[i] == states[lead], "replica %d differs from the leader %d" % (i, lead)
    assert states[lead][0] == b"200" and len(states[lead][1]) == 100
    assert states[lead][1][-1] == b"200"
    assert got == [b"200", 100, 5]
    assert after == before + 1, "a script's writes took %d entries" % (after - before)
    # a read-only script is no entry at all
    assert r.eval("return redis.call('get', KEYS[1])", 1, "{s}ctr") == b"200"
    assert settle(cluster) == after


def test_concurrent_scripts_and_writes_on_one_key_lose_nothing(cluster):
    """Scripts that read-modify-write one key while plain INCRs hit it from
    other connections: digests refuse an entry whose key changed under it,
    the script runs again, and the final count is exact."""
    lead = cluster.leader()
    script = "local v = tonumber(redis.call('get', KEYS[1]) or '0') " \
             "redis.call('set', KEYS[1], v + 1) return v + 1"
    errors = []

    def scripts():
        try:
            c = cluster.client(lead)
            for _ in range(100):
                c.eval(script, 1, "hot")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def incrs():
        try:
            c = cluster.client(lead)
            p = c.pipeline(transaction=False)
            for _ in range(10):
                for _ in range(10):
                    p.incr("hot")
                p.execute()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=f) for f in (scripts, scripts, incrs, incrs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert cluster.client(lead).get("hot") == b"400"
    settle(cluster)
    for i in cluster.procs:
        c = cluster.client(i)
        c.execute_command("READONLY")
        assert c.get("hot") == b"400", i


def test_a_script_past_the_time_limit_is_stopped_and_writes_nothing(cluster):
    lead = cluster.leader()
    r = cluster.client(lead)
    term = cluster.raft(lead)["term"]
    t0 = time.time()
    with pytest.raises(redis.exceptions.ResponseError, match="Script stopped"):
        r.eval("redis.call('set', KEYS[1], 'x') while true do end", 1, "spin")
    assert time.time() - t0 < 5
    with pytest.raises(redis.exceptions.ResponseError, match="Script stopped"):
        r.eval("redis.call('set', KEYS[1], 'x') "
               "while true do pcall(function() while true do end end) end", 1, "spin")
    assert r.exists("spin") == 0
    with pytest.raises(redis.exceptions.ResponseError, match="NOTBUSY"):
        r.execute_command("SCRIPT", "KILL")  # a script never outlives its turn of the loop
    assert cluster.leader() == lead and cluster.raft(lead)["term"] == term
    assert r.eval("return 1", 0) == 1


def kill_the_leader_during(cluster, lead, fn):
    """Runs fn(a client of lead) in a thread and kills lead 50 ms later
    (fn may fail in any way: the leader dies); returns a client of the next
    leader."""
    def run():
        try:
            fn(cluster.client(lead, timeout=5))
        except Exception:  # noqa: BLE001 - the leader dies: any error is fine
            pass

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.05)
    cluster.kill(lead)
    t.join(30)
    return cluster.client(cluster.leader(timeout=30))


def replicas_hold(cluster, keys, value):
    """Every live replica ends with value under every key (10 s each)."""
    for i in cluster.procs:
        c = cluster.client(i)
        c.execute_command("READONLY")
        deadline = time.time() + 10
        while [c.get(k) for k in keys] != [value] * len(keys) and time.time() < deadline:
            time.sleep(0.05)
        assert [c.get(k) for k in keys] == [value] * len(keys), i


def test_a_leader_killed_during_a_script_loses_all_of_it_or_none(cluster):
    """The leader runs a script that writes 50 keys and then spins until
    it is stopped; it is killed meanwhile. The new leader holds all 50
    keys or none (here: none, as nothing of a stopped script is proposed),
    and a whole script run afterwards is all there."""
    keys = ["{k}%d" % i for i in range(50)]
    script = "for i, k in ipairs(KEYS) do redis.call('set', k, 'v') end " \
             "local t = 0 while true do t = t + 1 end"
    r = kill_the_leader_during(cluster, cluster.leader(),
                               lambda c: c.eval(script, len(keys), *keys))
    present = sum(r.exists(k) for k in keys)
    assert present in (0, len(keys)), "%d of %d keys of one script" % (present, len(keys))
    n = r.eval("for i, k in ipairs(KEYS) do redis.call('set', k, 'w') end return #KEYS",
               len(keys), *keys)
    assert n == len(keys)
    replicas_hold(cluster, keys, b"w")


def test_cross_shard_keys(make_cluster):
    """Declared keys in two shards: CROSSSLOT; a redis.call on an
    undeclared key of another shard: Redis Cluster's error."""
    cl = make_cluster(3, extra=["--shards", "2"], wait_leader=False)
    r = cl.client(1)
    deadline = time.time() + 30
    while True:
        try:
            r.set("a", 1)
            r.set("b", 1)
            break
        except redis.exceptions.ResponseError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    from_slot = {}
    for k in ("a", "b", "c", "d", "e", "f", "g", "h"):
        from_slot.setdefault(int(r.execute_command("CLUSTER", "KEYSLOT", k)) < 8192, k)
    k1, k2 = from_slot[True], from_slot[False]
    with pytest.raises(redis.exceptions.ResponseError, match="CROSSSLOT"):
        r.eval("return 1", 2, k1, k2)
    with pytest.raises(redis.exceptions.ResponseError, match="non local key"):
        r.eval("return redis.call('get', ARGV[1])", 1, k1, k2)
    assert r.eval("return redis.call('incr', KEYS[1])", 1, k2) >= 1


def test_a_scripts_push_wakes_a_blocked_pop(cluster):
    """BLPOP waits on the leader; a script's RPUSH reaches it through the
    script's one entry (its keys are the entry's keys)."""
    lead = cluster.leader()
    got = []
    t = threading.Thread(target=lambda: got.append(
        cluster.client(cluster.followers()[0], timeout=20).blpop("{q}list", 15)))
    t.start()
    time.sleep(0.3)
    assert cluster.client(lead).eval(
        "return redis.call('rpush', KEYS[1], 'job')", 1, "{q}list") == 1
    t.join(20)
    assert got == [(b"{q}list", b"job")]


# ---- scripts inside MULTI (docs/scripting.md, "Scripts in transactions") ----
# A transaction that holds a script runs on the leader as one script: each
# command's reply is an element of EXEC's array (errors included), its
# writes one SHOAL.SCRIPT entry.

MULTI_LIB = ("#!lua name=mlib\n"
             "redis.register_function('mincr', function(keys, args) "
             "return redis.call('incrby', keys[1], args[1]) end)\n"
             "redis.register_function{function_name='mread', callback=function(keys) "
             "return redis.call('get', keys[1]) end, flags={'no-writes'}}")
MULTI_BODY = "return redis.call('incrby', KEYS[1], ARGV[1])"
MULTI_SHA = __import__("hashlib").sha1(MULTI_BODY.encode()).hexdigest()
MULTI_SETUP = [
    ["RPUSH", "{m}l", "a", "b"], ["HSET", "{m}h", "f", "v"], ["SET", "{m}n", "10"],
    ["FUNCTION", "LOAD", MULTI_LIB],
]
MULTI_SCRIPTS = [
    ["SCRIPT", "LOAD", MULTI_BODY],
    ["MULTI"],
    ["SET", "{m}a", "1"],
    ["EVALSHA", MULTI_SHA, "1", "{m}a", "5"],
    ["EVAL", "return redis.call('get', KEYS[1])", "1", "{m}a"],
    ["INCR", "{m}l"],
    ["EVALSHA", "f" * 40, "0"],
    ["EVALSHA", "abc", "0"],
    ["EVAL", "return 1", "2", "a"],
    ["EVAL", "return 1", "x"],
    ["EVAL", "return 1 +", "0"],
    ["EVAL", "redis.call('set', KEYS[1], 'x') error('late')", "1", "{m}b"],
    ["GET", "{m}b"],
    ["FCALL", "mincr", "1", "{m}a", "100"],
    ["FCALL_RO", "mread", "1", "{m}a"],
    ["FCALL", "nofn", "0"],
    ["FCALL_RO", "mincr", "1", "{m}a", "1"],
    ["EVAL_RO", "return redis.call('set', KEYS[1], 1)", "1", "{m}a"],
    ["EVAL", "return redis.pcall('multi')", "0"],
    ["EVAL", "return {1, 'two', {ok='three'}, {err='ERR four'}, true, false, 3.7}", "0"],
    ["EVAL", "return redis.call('hgetall', KEYS[1])", "1", "{m}h"],
    ["HGETALL", "{m}h"], ["LRANGE", "{m}l", "0", "-1"], ["PING"], ["ECHO", "e"],
    ["INCRBYFLOAT", "{m}n", "0.5"],
    ["EXEC"],
    ["MGET", "{m}a", "{m}b", "{m}n"],
    # no writes at all: answered at the read point
    ["MULTI"], ["EVAL", "return redis.call('get', KEYS[1])", "1", "{m}a"], ["GET", "{m}a"],
    ["EXEC"],
    # a queueing error still aborts, a DISCARD still discards
    ["MULTI"], ["EVAL", "return 1", "0"], ["NOSUCH"], ["EXEC"],
    ["MULTI"], ["EVAL", "return 1"], ["EXEC"],
    ["MULTI"], ["EVAL", "return redis.call('set', KEYS[1], 'd')", "1", "{m}d"], ["DISCARD"],
    ["EXISTS", "{m}d"],
    # only scripts
    ["MULTI"], ["EVALSHA", MULTI_SHA, "1", "{m}a", "1"], ["EVALSHA", MULTI_SHA, "1", "{m}a", "2"],
    ["EXEC"],
]
MULTI_RESP3 = [
    ["MULTI"],
    ["EVAL", "return {double=3.5}", "0"],
    ["EVAL", "redis.setresp(3); return redis.call('hgetall', KEYS[1])", "1", "{m}h"],
    ["EVAL", "return redis.call('hgetall', KEYS[1])", "1", "{m}h"],
    ["HGETALL", "{m}h"],
    ["EVAL", "return {true, false, {map={a=1}}, {set={b=true}}}", "0"],
    ["ZADD", "{m}z", "1.5", "x"], ["ZSCORE", "{m}z", "x"],
    ["EVAL", "return nil", "0"], ["GET", "{m}nokey"],
    ["EXEC"],
]


@pytest.mark.parametrize("through", ["follower", "leader"])
def test_scripts_inside_multi_match_redis_byte_for_byte(cluster, redis_server, through):
    node = cluster.followers()[0] if through == "follower" else cluster.leader()
    for c in MULTI_SETUP:
        cluster.client(node).execute_command(*c)
        redis.Redis(port=redis_server).execute_command(*c)
    compare(replies(cluster.ports[node], MULTI_SCRIPTS), replies(redis_server, MULTI_SCRIPTS),
            MULTI_SCRIPTS)
    compare(replies(cluster.ports[node], MULTI_RESP3, resp3=True),
            replies(redis_server, MULTI_RESP3, resp3=True), MULTI_RESP3)


def test_a_transaction_with_a_script_is_one_entry_on_every_replica(cluster):
    """redis-py's default pipeline (transaction=True) with a registered
    script and FCALL, through the leader and through a follower (whose
    EVALSHA reaches the leader as EVAL): the replies are Redis's, the whole
    transaction is one log entry, and every replica holds the leader's
    values (the run's writes were undone on the leader: SCRIPT_NO_UNDO)."""
    lead = cluster.leader()
    fol = cluster.followers()[0]
    cluster.client(lead).function_load(MULTI_LIB)
    for node in (lead, fol):
        r = cluster.client(node)
        for i in cluster.procs:  # each node has its own cache
            cluster.client(i).script_flush()
        k = "{p%d}ctr" % node
        r.set(k, 100)
        before = settle(cluster)
        incr = r.register_script(MULTI_BODY)
        p = r.pipeline(transaction=True)
        p.incr(k)
        incr(keys=[k], args=[5], client=p)
        p.fcall("mincr", 1, k, 10)
        p.get(k)
        try:
            got = p.execute()
        except redis.exceptions.ResponseError as e:
            got = e
        after = settle(cluster)
        states = {}
        for i in cluster.procs:
            c = cluster.client(i)
            c.execute_command("READONLY")
            states[i] = c.get(k)
        for i in cluster.procs:
            assert states[i] == states[lead], "replica %d differs from the leader %d: %r" % (
                i, lead, states)
        assert got == [101, 106, 116, b"116"], "through node %d: %r" % (node, got)
        assert after == before + 1, "the transaction took %d entries" % (after - before)


def test_transactions_with_scripts_racing_writes_on_one_key_lose_nothing(cluster):
    """Transactions of an INCR and a read-modify-write script race
    pipelined INCRs on one key: an entry whose key changed since its run is
    refused and the transaction runs again, so the count is exact, and
    each transaction's two replies are consecutive (nothing in between)."""
    lead = cluster.leader()
    script = "local v = tonumber(redis.call('get', KEYS[1]) or '0') " \
             "redis.call('set', KEYS[1], v + 1) return v + 1"
    errors, pairs = [], []

    def transactions(node):
        try:
            c = cluster.client(node)
            for _ in range(50):
                p = c.pipeline(transaction=True)
                p.incr("hot")
                p.eval(script, 1, "hot")
                pairs.append(p.execute())
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def incrs():
        try:
            p = cluster.client(lead).pipeline(transaction=False)
            for _ in range(10):
                for _ in range(10):
                    p.incr("hot")
                p.execute()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    fol = cluster.followers()[0]
    threads = [threading.Thread(target=f, args=a)
               for f, a in ((transactions, (lead,)), (transactions, (fol,)), (incrs, ()),
                            (incrs, ()))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert all(b == a + 1 for a, b in pairs), [x for x in pairs if x[1] != x[0] + 1][:3]
    assert cluster.client(lead).get("hot") == b"400"
    settle(cluster)
    for i in cluster.procs:
        c = cluster.client(i)
        c.execute_command("READONLY")
        assert c.get("hot") == b"400", i


def test_watch_aborts_a_transaction_with_a_script(cluster):
    fol = cluster.followers()[0]
    a, b = cluster.client(fol), cluster.client(cluster.leader())
    incr = a.register_script(MULTI_BODY)
    a.set("{w}k", "1")
    with a.pipeline() as p:
        p.watch("{w}k")
        b.set("{w}k", "2")
        p.multi()
        incr(keys=["{w}k"], args=[10], client=p)
        p.get("{w}k")
        with pytest.raises(redis.exceptions.WatchError):
            p.execute()
    assert a.get("{w}k") == b"2"
    with a.pipeline() as p:  # unchanged: it runs
        p.watch("{w}k")
        p.multi()
        incr(keys=["{w}k"], args=[10], client=p)
        p.get("{w}k")
        assert p.execute() == [12, b"12"]
    # a script that only reads, watched key changed: aborted too
    with a.pipeline() as p:
        p.watch("{w}k")
        b.set("{w}k", "3")
        p.multi()
        p.eval("return redis.call('get', KEYS[1])", 1, "{w}k")
        with pytest.raises(redis.exceptions.WatchError):
            p.execute()


def test_a_transaction_whose_script_is_stopped_applies_nothing(cluster):
    lead = cluster.leader()
    r = cluster.client(cluster.followers()[0])
    term = cluster.raft(lead)["term"]
    p = r.pipeline(transaction=True)
    p.set("{x}a", "1")
    p.eval("redis.call('set', KEYS[1], 'x') while true do end", 1, "{x}b")
    p.set("{x}c", "1")
    with pytest.raises(redis.exceptions.ResponseError,
                       match="nothing of the transaction was applied"):
        p.execute()
    assert r.exists("{x}a", "{x}b", "{x}c") == 0
    assert cluster.leader() == lead and cluster.raft(lead)["term"] == term


def test_a_leader_killed_during_a_transaction_with_a_script_loses_all_or_none(cluster):
    """The leader runs a transaction of 50 SETs and a script that spins
    until it is stopped; it is killed meanwhile. The new leader holds all
    50 keys or none; a whole transaction run afterwards is all there."""
    keys = ["{t}%d" % i for i in range(50)]

    def transaction(c):
        p = c.pipeline(transaction=True)
        for k in keys:
            p.set(k, "v")
        p.eval("local t = 0 while true do t = t + 1 end", 0)
        p.execute()

    r = kill_the_leader_during(cluster, cluster.leader(), transaction)
    present = sum(r.exists(k) for k in keys)
    assert present in (0, len(keys)), "%d of %d keys of one transaction" % (present, len(keys))
    p = r.pipeline(transaction=True)
    for k in keys:
        p.set(k, "w")
    p.eval("return #KEYS", 1, keys[0])
    assert p.execute() == [True] * len(keys) + [1]
    replicas_hold(cluster, keys, b"w")