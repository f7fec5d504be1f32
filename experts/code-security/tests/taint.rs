//! Taint tracking per language: flows that must be reported (with the
//! right CWE) and flows that must not (sanitized, reassigned, guarded,
//! constant branches, precise containers).

use synod_expert_code_security::{Finding, Scanner};

fn scan(path: &str, code: &str) -> Vec<Finding> {
    Scanner::builtin().unwrap().scan_source(path, code).unwrap()
}

fn cwes(path: &str, code: &str) -> Vec<u32> {
    scan(path, code).iter().map(|f| f.cwe).collect()
}

fn python(body: &str) -> String {
    let mut code = String::from(
        "from flask import request, session, redirect\nimport os, subprocess, pickle, shlex, html\n\n@app.route('/x')\ndef view():\n",
    );
    for line in body.lines() {
        code.push_str("    ");
        code.push_str(line);
        code.push('\n');
    }
    code
}

#[test]
fn python_flows_through_assignments_concatenation_and_fstrings() {
    let code =
        python("p = request.args.get('q')\ncmd = f'ls {p}'\nfull = 'x' + cmd\nos.system(full)");
    let findings = scan("a.py", &code);
    let sink = findings
        .iter()
        .find(|f| f.cwe == 78)
        .expect("cmdi reported");
    assert_eq!(sink.start_line, 9);
    assert_eq!(sink.source.as_ref().unwrap().line, 6);
    assert_eq!(sink.rule_id, "python.cmdi.os");
}

#[test]
fn python_reassignment_to_constant_breaks_the_flow() {
    let code = python("p = request.args.get('q')\nbar = p\nbar = 'safe'\nos.system('ls ' + bar)");
    assert!(!cwes("a.py", &code).contains(&78));
}

#[test]
fn python_sanitizers_only_clear_their_categories() {
    let quoted = python("p = request.args.get('q')\nos.system('ls ' + shlex.quote(p))");
    assert!(!cwes("a.py", &quoted).contains(&78));
    let escaped = python("p = html.escape(request.args.get('q'))\nos.system('ls ' + p)\nreturn p");
    let found = cwes("a.py", &escaped);
    assert!(
        found.contains(&78),
        "html.escape does not sanitize commands"
    );
    assert!(!found.contains(&79), "html.escape sanitizes XSS");
    let cast = python("p = int(request.args.get('q'))\nos.system('sleep ' + str(p))");
    assert!(!cwes("a.py", &cast).contains(&78));
}

#[test]
fn python_parameterised_queries_are_safe() {
    let safe = python("p = request.form['id']\ncur.execute('SELECT * FROM t WHERE id = ?', (p,))");
    assert!(!cwes("a.py", &safe).contains(&89));
    let unsafe_ =
        python("p = request.form['id']\ncur.execute('SELECT * FROM t WHERE id = %s' % p)");
    assert!(cwes("a.py", &unsafe_).contains(&89));
}

#[test]
fn python_allow_list_and_early_exit_guards() {
    let inside = python("p = request.args.get('f')\nif p in ['a.txt', 'b.txt']:\n    open(p)");
    assert!(!cwes("a.py", &inside).contains(&22));
    let early = python("p = request.args.get('f')\nif not p.isalnum():\n    return 'bad'\nopen(p)");
    assert!(!cwes("a.py", &early).contains(&22));
    let unguarded = python("p = request.args.get('f')\nif p:\n    open(p)");
    assert!(cwes("a.py", &unguarded).contains(&22));
}

#[test]
fn python_containers_track_constant_keys_and_positions() {
    let key_b =
        python("p = request.args.get('x')\nm = {}\nm['a'] = 'safe'\nm['b'] = p\neval(m['b'])");
    assert!(cwes("a.py", &key_b).contains(&94));
    let key_a =
        python("p = request.args.get('x')\nm = {}\nm['a'] = 'safe'\nm['b'] = p\neval(m['a'])");
    assert!(!cwes("a.py", &key_a).contains(&94));
    let popped = python("p = request.args.get('x')\nl = ['safe', p]\nl.pop(0)\neval(l[0])");
    assert!(cwes("a.py", &popped).contains(&94));
    let kept = python("p = request.args.get('x')\nl = ['safe', p]\neval(l[0])");
    assert!(!cwes("a.py", &kept).contains(&94));
}

#[test]
fn python_constant_conditions_prune_branches() {
    let dead = python(
        "p = request.args.get('x')\nnum = 106\nif (7 * 42) - num > 200:\n    bar = p\nelse:\n    bar = 'safe'\nos.system(bar)",
    );
    assert!(!cwes("a.py", &dead).contains(&78));
    let live = python(
        "p = request.args.get('x')\nnum = 86\nif (7 * 42) - num > 200:\n    bar = p\nelse:\n    bar = 'safe'\nos.system(bar)",
    );
    assert!(cwes("a.py", &live).contains(&78));
}

#[test]
fn python_branches_merge() {
    let code = python(
        "p = request.args.get('x')\nif cond():\n    bar = p\nelse:\n    bar = 'safe'\nos.system(bar)",
    );
    assert!(cwes("a.py", &code).contains(&78));
}

#[test]
fn python_sinks_with_conditions() {
    let shell = python("p = request.args.get('x')\nsubprocess.run('ls ' + p, shell=True)");
    assert!(cwes("a.py", &shell).contains(&78));
    let no_shell = python("p = request.args.get('x')\nsubprocess.run(['ls', p])");
    assert!(!cwes("a.py", &no_shell).contains(&78));
    let yaml_safe = python("p = request.data\nyaml.load(p, Loader=yaml.SafeLoader)");
    assert!(!cwes("a.py", &yaml_safe).contains(&502));
    let yaml_unsafe = python("p = request.data\nyaml.load(p, Loader=yaml.Loader)");
    assert!(cwes("a.py", &yaml_unsafe).contains(&502));
    let session = python("session['user'] = request.cookies.get('u')");
    assert!(cwes("a.py", &session).contains(&501));
}

#[test]
fn python_pattern_rules() {
    let code = "import hashlib, random, secrets\nhashlib.md5(b'x')\nhashlib.sha256(b'x')\nrandom.random()\nsecrets.token_hex()\nresp.set_cookie('a', 'b', secure=False, httponly=True)\nresp.set_cookie('a', 'b', secure=True, httponly=True)\nAPI_KEY = 'sk_live_1234567890'\n";
    let findings = scan("p.py", code);
    let lines = |cwe: u32| -> Vec<usize> {
        findings
            .iter()
            .filter(|f| f.cwe == cwe)
            .map(|f| f.start_line)
            .collect()
    };
    assert_eq!(lines(328), [2]);
    assert_eq!(lines(330), [4]);
    assert_eq!(lines(614), [6]);
    assert_eq!(lines(798), [8]);
}

#[test]
fn java_taint() {
    let vulnerable = r#"
class A {
    void doGet(HttpServletRequest request, HttpServletResponse response) throws Exception {
        String p = request.getParameter("id");
        String sql = "SELECT * FROM t WHERE id = '" + p + "'";
        conn.createStatement().executeQuery(sql);
        response.getWriter().println(p);
        Runtime.getRuntime().exec("ping " + p);
        new java.io.File("/data/" + p);
    }
}"#;
    let found = cwes("A.java", vulnerable);
    for cwe in [89, 79, 78, 22] {
        assert!(found.contains(&cwe), "CWE-{cwe} in {found:?}");
    }
    let safe = r#"
class A {
    void doGet(HttpServletRequest request, HttpServletResponse response) throws Exception {
        String p = request.getParameter("id");
        int id = Integer.parseInt(p);
        conn.createStatement().executeQuery("SELECT * FROM t WHERE id = " + id);
        String q = p;
        q = "constant";
        Runtime.getRuntime().exec("ping " + q);
        response.getWriter().println(ESAPI.encoder().encodeForHTML(p));
    }
}"#;
    assert_eq!(cwes("A.java", safe), Vec::<u32>::new());
}

#[test]
fn javascript_taint() {
    let vulnerable = "app.get('/x', (req, res) => {\n  const { file } = req.query;\n  fs.readFileSync('/srv/' + file);\n  res.send(`<b>${req.query.name}</b>`);\n  eval(req.body.code);\n});\n";
    let found = cwes("a.js", vulnerable);
    for cwe in [22, 79, 94] {
        assert!(found.contains(&cwe), "CWE-{cwe} in {found:?}");
    }
    let safe = "app.get('/x', (req, res) => {\n  const file = path.basename(req.query.file);\n  fs.readFileSync('/srv/' + file);\n  let n = req.query.name;\n  n = 'x';\n  res.send(n);\n});\n";
    assert_eq!(cwes("a.js", safe), Vec::<u32>::new());
}

#[test]
fn go_taint() {
    let vulnerable = "package main\n\nfunc h(w http.ResponseWriter, r *http.Request) {\n\tid := r.URL.Query().Get(\"id\")\n\tq := \"SELECT * FROM t WHERE id = \" + id\n\tdb.Query(q)\n\texec.Command(\"sh\", \"-c\", r.FormValue(\"c\"))\n\thttp.Redirect(w, r, id, 302)\n}\n";
    let found = cwes("a.go", vulnerable);
    for cwe in [89, 78, 601] {
        assert!(found.contains(&cwe), "CWE-{cwe} in {found:?}");
    }
    let safe = "package main\n\nfunc h(w http.ResponseWriter, r *http.Request) {\n\tid := r.URL.Query().Get(\"id\")\n\tdb.Query(\"SELECT * FROM t WHERE id = ?\", id)\n\tn, _ := strconv.Atoi(r.FormValue(\"n\"))\n\texec.Command(\"sleep\", fmt.Sprint(n))\n}\n";
    assert_eq!(cwes("a.go", safe), Vec::<u32>::new());
}

#[test]
fn unsupported_files_are_errors_not_panics() {
    let error = Scanner::builtin()
        .unwrap()
        .scan_source("notes.txt", "hello")
        .unwrap_err();
    assert!(
        error.to_string().contains("unsupported file type"),
        "{error}"
    );
    // Broken syntax still parses (tree-sitter recovers) and still finds flows.
    let broken = python("p = request.args.get('x'\nos.system(p)");
    let _ = scan("broken.py", &broken);
}

#[test]
fn switch_and_match_arms_merge() {
    let code = python(
        "p = request.args.get('x')\nmatch request.args.get('m'):\n    case 'a':\n        bar = p\n    case _:\n        bar = 'safe'\nos.system(bar)",
    );
    assert!(cwes("a.py", &code).contains(&78));
    let java = r#"
class A {
    void f(HttpServletRequest request) throws Exception {
        String p = request.getParameter("x");
        String bar = "safe";
        switch (request.getParameter("m")) {
            case "a": bar = "also safe"; break;
            default: bar = "safe"; break;
        }
        Runtime.getRuntime().exec(bar);
    }
}"#;
    assert!(!cwes("A.java", java).contains(&78));
}

#[test]
fn python_route_returns_are_reported_once() {
    let code = python("p = request.args.get('x')\nreturn make_response('<p>' + p)");
    let xss: Vec<Finding> = scan("a.py", &code)
        .into_iter()
        .filter(|f| f.cwe == 79)
        .collect();
    assert_eq!(xss.len(), 1, "{xss:?}");
    assert_eq!(xss[0].rule_id, "python.xss.response");
    let redirect = python("return redirect(request.args.get('next'))");
    let found = cwes("a.py", &redirect);
    assert!(found.contains(&601));
    assert!(!found.contains(&79), "a redirect response is not HTML");
}

#[test]
fn receivers_assigned_from_calls_resolve_to_their_origin() {
    let java = r#"
class A {
    void f(HttpServletRequest request, HttpServletResponse response) throws Exception {
        String p = request.getParameter("x");
        java.io.PrintWriter out = response.getWriter();
        out.println("<p>" + p + "</p>");
        HttpSession s = request.getSession();
        s.setAttribute("k", p);
    }
}"#;
    let found = cwes("A.java", java);
    assert!(found.contains(&79), "{found:?}");
    assert!(found.contains(&501), "{found:?}");
    let guarded =
        python("p = request.args.get('x')\nif p in ['a', 'b']:\n    os.system(p.strip())");
    assert!(
        !cwes("a.py", &guarded).contains(&78),
        "guards hold for method calls on the variable"
    );
}

#[test]
fn constant_switch_subjects_select_their_case() {
    let safe = python(
        "p = request.args.get('x')\npossible = 'ABC'\nguess = possible[1]\nmatch guess:\n    case 'A':\n        bar = p\n    case 'B':\n        bar = 'bob'\n    case _:\n        bar = p\nos.system(bar)",
    );
    assert!(!cwes("a.py", &safe).contains(&78));
    let taken = safe.replace("possible[1]", "possible[0]");
    assert!(cwes("a.py", &taken).contains(&78));
    let java = r#"
class A {
    void f(HttpServletRequest request) throws Exception {
        String param = request.getParameter("x");
        String bar;
        String guess = "ABC";
        char switchTarget = guess.charAt(2);
        switch (switchTarget) {
            case 'A': bar = param; break;
            case 'B': bar = "bob"; break;
            case 'C':
            case 'D': bar = param; break;
            default: bar = "bob"; break;
        }
        Runtime.getRuntime().exec(bar);
    }
}"#;
    assert!(cwes("A.java", java).contains(&78));
    let java_safe = java.replace("charAt(2)", "charAt(1)");
    assert!(!cwes("A.java", &java_safe).contains(&78));
}

#[test]
fn deeply_nested_code_is_refused_or_analysed_without_overflow() {
    // Run on a thread with a 2 MiB stack, like tokio's blocking pool.
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let scanner = Scanner::builtin().unwrap();
            let terms = vec!["p"; 4900].join(" + ");
            let ok = format!("def f():\n    p = request.args.get('x')\n    os.system({terms})\n");
            let found = scanner.scan_source("ok.py", &ok).unwrap();
            assert!(found.iter().any(|f| f.cwe == 78));
            let deep = format!("x = {}\n", vec!["p"; 6000].join(" + "));
            let error = scanner.scan_source("deep.py", &deep).unwrap_err();
            assert!(error.to_string().contains("nested"), "{error}");
        })
        .unwrap();
    handle.join().unwrap();
}
