"""supervisor/client/gotemplate.py against docker's own template engine (docker 20.10's CLI, Go
1.19's text/template with docker's functions), template by template: same output, same error
message, same exit status.

The docker CLI runs templates without a daemon in `docker context inspect --format T`; a
context's metadata is arbitrary JSON (map[string]interface {}, numbers float64), so a context
of this test's own (in a DOCKER_CONFIG directory of its own) carries each data set. The
template runs as {{define "x"}}T{{end}}{{template "x" DATA}}: inside, dot and $ are the data,
and positions in error messages are T's own in both engines.

Divergences kept: `join` takes a list of strings held as []interface {} (docker's typed data
are []string; on JSON-decoded data docker refuses it)."""
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from supervisor.client import gofmt, gojson
from supervisor.client.gotemplate import (DOCKER_FUNCS, HEADER_FUNCS, Func, ParseError,
                                          Template, TemplateError)

DOCKER = "/usr/bin/docker"   # docker.io's CLI, Go 1.19's text/template

PLAIN = {"s": "héllo", "l": [1, 2], "m": {"k": "v"}, "a": 1, "c": None, "nil_list": [1, None, "x"],
         "n": 123456789, "f": 2.5, "big": 1e21, "tiny": 1e-7, "z": 0, "neg": -3.25,
         "u": "héllo wörld", "html": "<a&b>", "env": ["A=1", "B=2"],
         "mm": {"b": 2, "a": 1, "c": [1, {"x": None}]}, "e": [], "em": {}, "t": True,
         "q": "a\"b\\c\n\td\u0001\u2028é"}

CORPUS = [
    # fields, maps, missing keys, nil
    "{{.s}}", "{{.c}}", "{{.missing}}", "{{.m.k}}", "{{.m.zz}}", "{{.missing.Foo}}",
    "{{.c.Foo}}", "{{.s.Foo}}", "{{.a.Foo}}", "{{.l.Foo}}", "{{.a $}}", "{{(.m).k}}",
    "{{print .c}}", "{{print .missing}}", "{{.Foo}}bar", "{{ $ }}", "{{ $.s }}", "{{.}}",
    # printing Go values
    "{{.n}} {{.f}} {{.big}} {{.tiny}} {{.z}} {{.neg}}", "{{.mm}}", "{{.l}}", "{{.nil_list}}",
    "{{1.0}} {{1e6}} {{100000.0}} {{0.0001}} {{0.00001}} {{-0.0}} {{1e20}} {{123456.7}}",
    "{{0x1F}} {{0o17}} {{017}} {{1_000}} {{1e3}} {{.5}} {{0x1p-2}} {{'a'}} {{'\\n'}} {{'é'}}",
    "{{9223372036854775808}}", "{{1e400}}", "{{'ab'}}", "{{1}}", "{{nil}}",
    # json
    "{{json .}}", "{{json .mm}}", "{{json .c}}{{json .missing}}", "{{.c | json}}",
    "{{json .q}}", "{{json .html}}", "{{.tiny | json}} {{.big | json}} {{json 0.000001}}",
    "{{json 1e20}} {{json 123456789.5}} {{json .e}} {{json .em}} {{json nil}} {{json true}}",
    # printf and friends
    '{{printf "%5.2f|%-6s|%06d|%x|%X|%o|%e|%g|%G|%E" .f .u 42 255 "hi" 8 .n .n .tiny .big}}',
    '{{printf "%q %v %s" .q .env .env}}', '{{printf "%t %v %d" .t .t .t}}',
    '{{printf "%T %T %T %T %T %T" .n .u .env .mm .t .c}}', '{{printf "%10v|%-10v|" .env .u}}',
    '{{printf "%.3s|%.1f|%+d|% d|%+.2e" .u .f 5 5 .f}}', '{{printf "%c%c %U" 72 105 0x1F600}}',
    '{{printf "%d %s %v %q" .s .a .l .s}}', '{{printf "%d"}}', '{{printf "%d" 1 2}}',
    '{{printf "%+q" .u}}', '{{printf "%x" .u}}', '{{printf "% x" .u}}', '{{printf "%d" .env}}',
    '{{printf "%s" .mm}}', '{{printf "%6.2f%%" .f}}', '{{printf "%08.3f" .neg}}',
    '{{printf "%-8d|" 42}}', '{{printf "%+.3g" .n}}', '{{printf "%.0f" 2.5}}',
    '{{printf "%*d" 5 42}}', '{{printf "%.*f" 2 .f}}', '{{printf "%!"}}', '{{printf "%z" 1}}',
    '{{printf "%"}}', '{{printf "%s %s" "a"}}', '{{ printf "%d" nil }}',
    '{{print 1 2 "a" "b" 3 .c nil}}', '{{println 1 "a" .mm}}',
    # docker's functions
    '{{title .u}} {{upper .u}} {{lower "ÀBC"}} {{upper "straße"}} {{lower "İ"}}',
    '{{title "hello wORLD foo_bar x-y"}}', '{{split .u "l"}}', '{{split "abc" ""}}',
    '{{join (split "a,b,c" ",") "+"}}', '{{pad .u 2 3}}|{{pad "" 2 3}}|',
    '{{truncate .u 2}}|{{truncate .u 100}}|{{truncate .u 0}}', '{{ truncate .s -1 }}',
    '{{upper .a}}', '{{upper .missing}}', '{{ pad .s "a" 1 }}', '{{ pad .s 1.5 1 }}',
    '{{html .html}} {{js .q}} {{urlquery .u .n}}',
    # builtins
    "{{len .u}} {{len .env}} {{len .mm}} {{len \"é\"}}", "{{len .missing}}", "{{len .c}}",
    "{{len .a}}", "{{len}}", "{{len .s .s}}", "{{ len nil }}",
    "{{index .nil_list 1}}", "{{index .m \"zz\"}}", "{{index .l 7}}", "{{index .l 2}}",
    "{{index .l 1.5}}", "{{index .s 0}}", "{{index .mm \"c\" 1 \"x\"}}",
    "{{index .mm \"c\" 1 \"x\" \"y\"}}", "{{(index .mm.c 1).x}}", "{{ index nil 1 }}",
    "{{ index .l nil }}", "{{ index .m 1 }}", "{{slice .s 1}}", "{{slice .nil_list 1 2}}",
    "{{slice \"héllo\" 1 3}}", "{{ slice .l 2 1 }}", "{{ slice .l 0 1 2 3 }}",
    "{{ slice .s 1 2 3 }}", "{{ slice .m 1 }}", "{{ printf }}", "{{ printf 1 }}",
    "{{eq .missing \"x\"}}", "{{eq .c \"x\"}}", "{{eq .s \"héllo\"}}", "{{eq .a 1}}",
    "{{eq .a 1.0}}", "{{eq 1 2 3 1}}", "{{eq \"a\"}}", "{{eq .env .env}}",
    "{{lt 1 2}} {{lt 1.5 2.5}} {{lt \"a\" \"b\"}} {{le 2 2}} {{gt 3 2}} {{ge 1 2}} {{ne 1 2}}",
    "{{lt 1 2.0}}", "{{lt true false}}", "{{lt .env .env}}",
    "{{and 1 0 .zz}}", "{{or 0 \"\" .s}}", "{{not .l}}", "{{and}}", "{{not}}",
    "{{ .t | not | not }}", "{{ if and .t (not .z) }}yes{{ end }}",
    "{{ if or .z .e .em \"\" }}yes{{ else }}no{{ end }}", "{{ and .s .nope | not }}",
    # pipelines, variables, control
    '{{"a" | upper}}', '{{.s | upper | printf "%s!"}}', "{{.s |}}", "{{ .l | index 0 }}",
    "{{ .m | len }}", "{{ .s | not }}", "{{ 1 | not }}", "{{ .f | printf \"%v\" | len }}",
    "{{$x := 1}}{{$x = 2}}{{$x}}", "{{$x = 1}}", "{{$x := .env}}{{range $x}}{{$x}}{{end}}",
    "{{with $x := .s}}{{$x}}{{end}}", "{{$x := 1}}{{$x.y}}",
    "{{range $i, $e := .nil_list}}{{$i}}={{$e}},{{end}}", "{{range .m}}{{.}}{{end}}",
    "{{range $k, $v := .mm}}{{$k}}={{$v}};{{end}}", "{{range .e}}x{{else}}empty{{end}}",
    "{{range .s}}{{end}}", "{{range $i, $x := .env}}{{if eq $i 1}}{{break}}{{end}}{{$x}}{{end}}",
    "{{range .env}}{{if eq . \"A=1\"}}{{continue}}{{end}}{{.}}{{end}}",
    "{{if eq .f 1.0}}one{{else if eq .f 2.5}}twofive{{else}}other{{end}}",
    "{{with .missing}}x{{else}}none{{end}}", "{{block \"b\" .}}B{{.s}}{{end}}",
    "{{template \"y\"}}", "{{template \"x\" .}}", "{{define \"z\"}}a{{end}}",
    # whitespace and comments
    '{{- " a " -}}  {{- .u -}}  ', "  {{- /* comment */ -}}  x", "{{/* c */}}", "{{/* c */ }}",
    "a {{- 3}}", "{{3 -}} b", "{{-3}}", "{{ .s -}}\n\n  x", '{{ .s }} {{- "\\n" -}} y',
    "{{/* unclosed", "{{/* a */ x}}",
    # errors: positions, lines, contexts
    '{{printf "%d %d %d %d %d" .s .s .s .s .nope | len}}', "héllo {{.s.x}}",
    "line1\nline2 {{.s.x}}", "{{if .s}}\n{{.s.x}}{{end}}", "{{.s .l}}", "{{. 1}}", '{{"a" 1}}',
    "{{(1)}}", "{{(.l) 1}}", "{{index .l 1 2 3 4 5 6 7 8 9 10 11 12}}",
    '{{(printf "%s%s%s%s%s%s%s%s%s%s" .s .s .s .s .s .s .s .s .s .s).foo}}',
    # parse errors
    "{{if}}{{end}}", "{{end}}", "{{if .a}}", "{{.a | 1}}", '{{"x".y}}', "{{$y}}", "{{ $x }}",
    "{{range $i, $e, $f := .l}}{{end}}", "{{range $i, 1 := .l}}{{end}}",
    "{{with $x, $y := .l}}{{end}}", "{{.l.}}", "{{.s#}}", '{{"unterminated}}', "{{`raw}}",
    "{{'a}}", '{{"\\q"}}', "{{ .s ) }}", "{{ ( .s }}", "{{ .s := 1 }}", "{{ .s = 1 }}",
    "{{: }}", "{{ @ }}", "{{ € }}", "{{ .s | | }}", "{{ | .s }}",
    "{{ if .s }}{{ else }}{{ else }}{{ end }}", "{{ range .l }}{{ else if .s }}{{ end }}",
    "{{break}}", "{{range .l}}{{break 1}}{{end}}", "{{ 1 2 }}", "{{ 3a }}", "{{ 0x }}",
    "{{ 1.2.3 }}", "{{ nil.x }}", "{{ (nil).x }}", "{{ foo }}", "{{.Bad",
    "ok\n{{if .a}}\n{{.b | }}{{else}}{{end}\n", "{{.a}}\n{{nosuch .b}}", "{{.a}", "{{$}",
    "{{.a}x}}", "{{1}", "{{ .a}}}", "{{.}",
]


def go_data(text: str):
    """The data as Go decodes them into interface {}: numbers float64, objects maps."""
    return json.loads(text, parse_int=float, object_pairs_hook=gofmt.Map)


def ours(template: str, data) -> tuple[str, str, int]:
    """What `docker context inspect --format` would print, from our engine."""
    text = '{{define "x"}}' + template + '{{end}}{{template "x" .}}'
    try:
        return Template(text).execute(data) + "\n", "", 0
    except ParseError as e:
        return "", f"template parsing error: {e}\n", 64
    except TemplateError as e:
        return "\n", f"template parsing error: {e}\n", 1


class DockerTemplates:
    """docker's engine on arbitrary JSON: a context's metadata."""

    def __init__(self, config: Path):
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(config),
                    "DOCKER_CONFIG": str(config)}
        proc = subprocess.run([DOCKER, "context", "create", "probe", "--docker",
                               "host=unix:///nonexistent.sock"], env=self.env,
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        metas = list((config / "contexts" / "meta").glob("*/meta.json"))
        assert len(metas) == 1, metas
        self.meta = metas[0]

    def load(self, data_json: str) -> None:
        self.meta.write_text(json.dumps({"Name": "probe", "Metadata": json.loads(data_json),
                                         "Endpoints": {"docker": {"Host": "unix:///x",
                                                                  "SkipTLSVerify": False}}}))

    def run(self, template: str) -> tuple[str, str, int]:
        text = '{{define "x"}}' + template + \
            '{{end}}{{template "x" .Metadata.Metadata.AdditionalFields}}'
        proc = subprocess.run([DOCKER, "context", "inspect", "probe", "--format", text],
                              env=self.env, capture_output=True, timeout=30)
        return (proc.stdout.decode(errors="surrogateescape"),
                proc.stderr.decode(errors="surrogateescape"), proc.returncode)


@pytest.fixture(scope="module")
def docker_templates(tmp_path_factory):
    if not os.path.exists(DOCKER):
        pytest.fail("docker.io is not installed: run `make install`")
    config = tmp_path_factory.mktemp("docker-config")
    try:
        yield DockerTemplates(config)
    finally:
        shutil.rmtree(config, ignore_errors=True)


def differences(docker_templates, data: dict, corpus) -> list[str]:
    text = json.dumps(data)
    docker_templates.load(text)
    values = go_data(text)
    out = []
    with ThreadPoolExecutor(max_workers=2) as pool:    # a docker CLI start is ~30 ms
        results = list(pool.map(docker_templates.run, corpus))
    for t, theirs in zip(corpus, results):
        mine = ours(t, values)
        if theirs != mine:
            out.append(f"{t!r}\n  docker: {theirs!r}\n  ours:   {mine!r}")
    return out


def test_same_as_docker(docker_templates):
    diff = differences(docker_templates, PLAIN, CORPUS)
    assert not diff, f"{len(diff)} of {len(CORPUS)} templates differ:\n" + "\n".join(diff)


def test_docker_inspect_forms_as_docker(docker_templates):
    """What scripts written for docker inspect do, on data shaped like it."""
    data = {"Id": "abc123", "Name": "/web", "State": {"Status": "running", "Pid": 42,
                                                      "Running": True, "ExitCode": 0},
            "Config": {"Env": ["A=1", "PATH=/bin"], "Labels": {"k": "v", "a.b": "c"},
                       "Cmd": ["sh", "-c", "echo hi"], "Entrypoint": None, "Image": "busybox",
                       "ExposedPorts": {"80/tcp": {}}},
            "Mounts": [{"Source": "/tmp", "Destination": "/mnt", "RW": False}],
            "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}}}
    corpus = ["{{.State.Pid}}", "{{json .Config}}", "{{.Id}}", "{{.Name}}",
              "{{range .Config.Env}}{{println .}}{{end}}", '{{index .Config.Labels "k"}}',
              '{{index .Config.Labels "a.b"}}', "{{.Config.Labels.k}}", "{{.Config.Labels}}",
              "{{json .State}}", "{{.State.Status}} {{.State.ExitCode}}",
              "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}",
              "{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}}{{end}}",
              "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}",
              "{{range $p, $conf := .NetworkSettings.Ports}}{{$p}} -> {{(index $conf 0).HostPort}}"
              "{{end}}", "{{if .State.Running}}up{{else}}down{{end}}",
              "{{.Config.Cmd}} {{len .Config.Cmd}}", "{{json .Mounts}}",
              "{{with .Config.Entrypoint}}{{.}}{{else}}none{{end}}", "{{.Foo}}",
              "{{.State.Foo.Bar}}", "{{ .Config.Image | printf \"%q\" }}",
              "{{lower .State.Status}} {{upper .Name}} {{title .State.Status}}",
              "{{split .Config.Image \":\"}}", "{{.Config.ExposedPorts}}",
              "{{json .Config.ExposedPorts}}", "{{ .State.Pid | printf \"%d\" }}"]
    diff = differences(docker_templates, data, corpus)
    assert not diff, f"{len(diff)} of {len(corpus)} templates differ:\n" + "\n".join(diff)


def test_join_of_json_strings_is_kept(docker_templates):
    """Kept divergence: docker's typed data hold []string, which join takes; the same list
    decoded from JSON is []interface {}, which docker's join refuses and ours takes."""
    docker_templates.load(json.dumps({"env": ["A=1", "B=2"]}))
    theirs = docker_templates.run('{{join .env ","}}')
    assert theirs[2] == 1 and "expected []string; got []interface {}" in theirs[1], theirs
    assert Template('{{join .env ","}}').execute(go_data('{"env": ["A=1", "B=2"]}')) == "A=1,B=2"


# --- what the docker shapes rely on ----------------------------------------------------------

def test_a_struct_field_that_is_not_there_is_an_error():
    data = gofmt.Struct(Id="x", State=gofmt.Struct(Pid=1), type="types.ContainerJSON",
                        json_only=("Id",))
    for t, msg in (("{{.Foo}}", 'template: :1:2: executing "" at <.Foo>: can\'t evaluate field '
                                "Foo in type types.ContainerJSON"),
                   ("{{.State.Pid.X}}", 'template: :1:8: executing "" at <.State.Pid.X>: '
                                        "can't evaluate field X in type int"),
                   ("{{.Id}}", 'template: :1:2: executing "" at <.Id>: can\'t evaluate field '
                               "Id in type types.ContainerJSON")):
        with pytest.raises(TemplateError) as e:
            Template(t).execute(data)
        assert str(e.value) == msg
    # what docker inspect runs next: the JSON as maps, a missing key an error
    raw = gojson.as_json_value(data)
    assert Template("{{.Id}}").execute(raw, missingkey="error") == "x"
    with pytest.raises(TemplateError) as e:
        Template("{{.Foo}}").execute(raw, missingkey="error")
    assert str(e.value) == 'template: :1:2: executing "" at <.Foo>: map has no entry for key ' \
                           '"Foo"'


def test_optional_fields_print_no_value_and_are_false():
    state = gofmt.Struct(Status="created", optional=("StartedAt",))
    assert Template("{{.StartedAt}}|{{if .StartedAt}}y{{else}}n{{end}}|{{json .}}").execute(
        state) == '<no value>|n|{"Status":"created"}'


def test_typed_maps_and_slices():
    """docker's map[string]string Labels: index of a missing key is ""; nil slices and maps:
    JSON null, yet printed [] and map[] with length 0 (Go's typed nil)."""
    data = gofmt.Struct(Labels=gofmt.string_map({"b": "2", "a": "1"}),
                        Entrypoint=gofmt.strings(None), Volumes=gofmt.Map(nil=True),
                        Plain={"a": "1"})
    t = '{{index .Labels "zz"}}|{{index .Plain "zz"}}|{{.Labels.zz}}|{{.Labels}}|' \
        '{{json .Labels}}|{{.Entrypoint}}|{{json .Entrypoint}}|{{len .Entrypoint}}|' \
        '{{range .Entrypoint}}x{{else}}none{{end}}|{{.Volumes}}|{{json .Volumes}}'
    assert Template(t).execute(data) == \
        '|<no value>|<no value>|map[a:1 b:2]|{"a":"1","b":"2"}|[]|null|0|none|map[]|null'


def test_methods_in_data():
    row = {"Labels": "a=1", "Label": Func(lambda k: {"a": "1"}.get(k, ""), ("string",))}
    assert Template('{{.Label "a"}}|{{.Label "b"}}|{{json .}}').execute(row) == \
        '1||{"Labels":"a=1"}'
    with pytest.raises(TemplateError) as e:
        Template("{{.Label}}").execute(row)
    assert str(e.value).endswith("at <.Label>: wrong number of args for Label: want 1 got 0")


def test_missingkey_option():
    assert Template("{{.a}}", missingkey="zero").execute({}) == "<no value>"
    assert Template("{{.a}}", missingkey="zero").execute(gofmt.Map(zero="")) == ""
    with pytest.raises(TemplateError, match='map has no entry for key "a"'):
        Template("{{.a}}", missingkey="error").execute({})


def test_output_before_an_error_is_kept():
    out: list = []
    with pytest.raises(TemplateError):
        Template("head {{.a}} {{.a.b.c | len}} tail").execute({"a": "x"}, out=out)
    assert "".join(out) == "head x "


def test_header_functions_leave_names_alone():
    t = Template("{{json .ID}}|{{upper .ID}}|{{truncate .ID 2}}|{{pad .ID 1 1}}|"
                 "{{split .ID \" \"}}")
    assert t.execute({"ID": "CONTAINER ID"}, funcs=HEADER_FUNCS) == \
        "CONTAINER ID|CONTAINER ID|CONTAINER ID| CONTAINER ID |CONTAINER ID"
    assert t.execute({"ID": "abc def"}, funcs=DOCKER_FUNCS) == \
        '"abc def"|ABC DEF|ab| abc def |[abc def]'


def test_json_escapes_html_only_when_asked():
    assert Template("{{json .}}").execute({"x": "<&>"}) == '{"x":"<&>"}'
    assert gojson.json_dumps({"x": "<&>\u2028"}) == '{"x":"\\u003c\\u0026\\u003e\\u2028"}'
    assert gojson.json_dumps(gofmt.Struct(x="<", escape_html=True), escape_html=False) == \
        '{"x":"\\u003c"}'
    assert gojson.json_dumps([1.0, 1e21, 1e-7, 0.5, -0.0]) == "[1,1e+21,1e-7,0.5,-0]"


def test_recursion_is_an_error_not_a_crash():
    with pytest.raises(TemplateError) as e:
        Template('{{define "r"}}{{template "r" .}}{{end}}{{template "r" .}}').execute({})
    assert "exceeded maximum template depth (100000)" in str(e.value)
    assert 'executing "r" at <{{template "r" .}}>' in str(e.value)


def test_parse_errors_name_line_and_what():
    with pytest.raises(ParseError) as e:
        Template("ok\n{{if .a}}\n{{.b | }}{{else}}{{end}\n")
    assert str(e.value) == "template: :3: bad character U+007D '}'"
    with pytest.raises(ParseError) as e:
        Template("{{.a}}\n{{nosuch .b}}")
    assert str(e.value) == 'template: :2: function "nosuch" not defined'
