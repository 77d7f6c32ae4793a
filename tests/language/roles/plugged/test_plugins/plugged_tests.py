# A test plugin written for recover's tests.


def plugged_even(n):
    return int(n) % 2 == 0


class TestModule(object):
    def tests(self):
        return {'plugged_even': plugged_even}
