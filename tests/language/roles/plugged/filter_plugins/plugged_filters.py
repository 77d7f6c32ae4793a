# Filters written for recover's tests: a role's own filter plugins, as real roles ship them.


def plugged_shout(s, suffix='!'):
    return s.upper() + suffix


def plugged_pairs(d):
    return sorted(d.items())


class FilterModule(object):
    def filters(self):
        return {'plugged_shout': plugged_shout, 'plugged_pairs': plugged_pairs}
