#!/usr/bin/python
# A small module written for recover's tests: writes `text` to `path` (check mode and diff aware).
from ansible.module_utils.basic import AnsibleModule


def main():
    m = AnsibleModule(argument_spec=dict(text=dict(type='str', required=True), path=dict(type='path', required=True)), supports_check_mode=True)
    text, path = m.params['text'], m.params['path']
    try:
        with open(path) as f:
            before = f.read()
    except FileNotFoundError:
        before = ''
    changed = before != text
    if changed and not m.check_mode:
        with open(path, 'w') as f:
            f.write(text)
    m.exit_json(changed=changed, echoed=text, diff=dict(before=before, after=text, before_header=path, after_header=path))


if __name__ == '__main__':
    main()
