/* slot.h: Redis Cluster's key-to-slot function: CRC16 (XMODEM: polynomial
 * 0x1021, initial value 0) of the key, modulo 16384. If the key holds a
 * non-empty hash tag, `{...}` (the first `{` and the first `}` after it
 * with at least one byte between), only the tag is hashed, so that
 * "{user1}.a" and "{user1}.b" share a slot. Pure: no state. */
#ifndef SHOAL_ROUTER_SLOT_H
#define SHOAL_ROUTER_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define SLOT_COUNT 16384u

uint16_t slot_crc16(const void *data, size_t len);
uint16_t slot_of_key(const void *key, size_t len);

#endif
