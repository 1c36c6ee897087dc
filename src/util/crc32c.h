/* crc32c.h: CRC-32C (Castagnoli), the checksum of every record on disk and
 * frame on the wire. Uses the SSE4.2 crc32 instruction when the CPU has
 * it (decided once, a benign race between threads), else a table. */
#ifndef SHOAL_CRC32C_H
#define SHOAL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: pass 0 to start. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif
