# The use-case table is shared with the host: its rows must stay well formed.
import usecases


def test_codes_unique():
    codes = [row[0] for row in usecases.USE_CASES]
    assert len(codes) == len(set(codes))


def test_find():
    assert usecases.find(0x006E)[1] == "GCS04"
    assert usecases.find(0x0F00)[5] == "SECMP0002"
    assert usecases.find(0x1234) is None
