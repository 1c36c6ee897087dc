/* slot.c: see slot.h. The CRC is computed a byte at a time from a table
 * built once (256 entries: 512 bytes). */
#include "router/slot.h"

#include <stdbool.h>

static uint16_t slot__table[256];
static bool slot__table_ready;

static void slot__build_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint16_t crc = (uint16_t)(i << 8);
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        }
        slot__table[i] = crc;
    }
    slot__table_ready = true;
}

uint16_t slot_crc16(const void *data, size_t len) {
    if (!slot__table_ready) slot__build_table(); /* one thread: the event loop */
    const uint8_t *p = data;
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc = (uint16_t)((crc << 8) ^ slot__table[((crc >> 8) ^ p[i]) & 0xff]);
    }
    return crc;
}

uint16_t slot_of_key(const void *key, size_t len) {
    const char *k = key;
    size_t open = 0;
    while (open < len && k[open] != '{') open++;
    if (open < len) {
        size_t close = open + 1;
        while (close < len && k[close] != '}') close++;
        if (close < len && close > open + 1) {
            return (uint16_t)(slot_crc16(k + open + 1, close - open - 1) & (SLOT_COUNT - 1));
        }
    }
    return (uint16_t)(slot_crc16(k, len) & (SLOT_COUNT - 1));
}
