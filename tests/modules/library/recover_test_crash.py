#!/usr/bin/python
# A module written for recover's tests that dies before it answers (ansible-core's MODULE FAILURE).
import os
import sys
from ansible.module_utils.basic import AnsibleModule


def main():
    m = AnsibleModule(argument_spec=dict(why=dict(type='str'), hard=dict(type='bool', default=False)), supports_check_mode=True)
    if m.params['hard']:
        # Gone with no answer at all: what a segfault or an OOM kill leaves.
        sys.stdout.write('not json at all\n')
        sys.stderr.write('recover-test-crash: died hard\n')
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(3)
    raise RuntimeError('recover-test-crash: the module broke on purpose')


if __name__ == '__main__':
    main()
