#!/usr/bin/python
# A module written for recover's tests that has no check mode: appends `line` to `path`.
from ansible.module_utils.basic import AnsibleModule


def main():
    m = AnsibleModule(argument_spec=dict(line=dict(type='str', required=True), path=dict(type='path', required=True)))
    with open(m.params['path'], 'a') as f:
        f.write(m.params['line'] + '\n')
    m.exit_json(changed=True)


if __name__ == '__main__':
    main()
