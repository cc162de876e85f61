# CRC-32 (IEEE, as binascii.crc32) for ports built without binascii.crc32. The store
# and the link import it only there, so other boards never load it.


def crc32(data, crc=0):
    """binascii.crc32(data, crc): bit by bit, small rather than fast."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 & -(crc & 1))
    return crc ^ 0xFFFFFFFF
