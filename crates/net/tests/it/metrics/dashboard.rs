//! The Grafana dashboard and Prometheus config name only series the
//! replicas export.

use super::*;

/// Every query of the Grafana dashboard (panel targets and template
/// variables) names only series that a real replica's scrape holds, each
/// label it filters, groups or labels legends by is one those series carry,
/// and the Prometheus config beside it scrapes /metrics. The names come from
/// the scrape, not a list: a histogram is queried through the
/// `_bucket`/`_sum`/`_count` series it exposes (its bare family name selects
/// nothing in Prometheus and fails here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_queries_name_only_exported_series() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dashboards");
    let json = std::fs::read_to_string(dir.join("bftbench.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&json).unwrap();
    let queries = dashboard_queries(&dashboard);
    check_prometheus_yml(&std::fs::read_to_string(dir.join("prometheus.yml")).unwrap());

    let cluster = LocalCluster::<Pbft>::start(cluster_cfg(), pbft_cfg())
        .await
        .unwrap();
    // A quiet cluster rejects nothing: one undecodable frame gives
    // `bft_rejected_total` a sample, so its labels are seen too.
    let byzantine = send_garbage_frame(&cluster).await;
    load_and_quiesce(&cluster, 5).await;
    let addrs: Vec<SocketAddr> = (0..4u16)
        .map(|i| cluster.metrics_addr(NodeId(i)).unwrap())
        .collect();
    let scrapes = scrape_when_delivered(&addrs, 5).await;
    drop(byzantine);
    cluster.stop().await.unwrap();
    // Series name -> the label names its samples carry.
    let mut exported: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in scrapes.iter().flatten() {
        exported
            .entry(&s.name)
            .or_default()
            .extend(s.labels.keys().map(String::as_str));
    }

    let mut used_series = BTreeSet::new();
    let mut used_labels = BTreeSet::new();
    for (what, query, legend) in &queries {
        let (series, mut labels) = promql_names(query);
        labels.extend(legend_labels(legend));
        assert!(!series.is_empty(), "{what}: `{query}` names no bft_ series");
        for name in &series {
            let carried = exported.get(name.as_str()).unwrap_or_else(|| {
                panic!(
                    "{what}: `{query}` names {name}, which no replica exports; exported: {:?}",
                    exported.keys()
                )
            });
            for label in &labels {
                assert!(
                    carried.contains(label.as_str()),
                    "{what}: `{query}` uses label {label}, which {name} does not carry ({carried:?})"
                );
            }
        }
        used_series.extend(series);
        used_labels.extend(labels);
    }
    // What the dashboard is for: each of these is shown somewhere.
    for name in [
        "bft_decisions_total",
        "bft_commit_latency_seconds_bucket",
        "bft_messages_sent_total",
        "bft_message_bytes_sent_total",
        "bft_view_changes_total",
        "bft_view",
        "bft_queue_depth",
        "bft_outbound_queue_depth",
        "bft_outbound_queue_bytes",
        "bft_rejected_total",
        "bft_dropped_total",
        "bft_retained_entries",
        "bft_node_task_cpu_seconds_total",
    ] {
        assert!(used_series.contains(name), "no panel shows {name}");
    }
    for label in ["node", "kind", "reason", "queue", "peer", "cause", "le"] {
        assert!(used_labels.contains(label), "no query uses label {label}");
    }
}

/// Sends replica 0 one frame that cannot decode (its first varint, the
/// enum variant, is 2^32 - 1) over an authenticated connection as node 3,
/// as quic_faults.rs does, and waits until replica 0's scrape counts it.
/// The connection stays open while the returned pair lives.
async fn send_garbage_frame(cluster: &LocalCluster<Pbft>) -> (quinn::Endpoint, quinn::Connection) {
    let keys = |id| SecretKeys::from_seed(cluster_cfg().seed, NodeId(id));
    let member3 = node_identity(&keys(3), NodeId(3)).unwrap();
    let expected = keys(0).member(NodeId(0)).ed25519.0;
    let ep = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let cfg = client_config(&member3, expected, PathProfile::Network).unwrap();
    let conn = ep
        .connect_with(cfg, cluster.addr(NodeId(0)).unwrap(), "bftbench")
        .unwrap()
        .await
        .unwrap();
    let body = [0xff, 0xff, 0xff, 0xff, 0x0f];
    let mut send = conn.open_uni().await.unwrap();
    // A protocol stream (its kind first), then a frame that never decodes.
    let kind = bft_net::wire::StreamKind::Protocol.frame();
    send.write_all(&(kind.len() as u32).to_be_bytes())
        .await
        .unwrap();
    send.write_all(&kind).await.unwrap();
    send.write_all(&(body.len() as u32).to_be_bytes())
        .await
        .unwrap();
    send.write_all(&body).await.unwrap();
    send.finish().unwrap();
    let metrics = cluster.metrics_addr(NodeId(0)).unwrap();
    for _ in 0..200 {
        let (_, text) = get(metrics, "/metrics").await;
        if parse(&text)
            .iter()
            .any(|s| s.name == "bft_rejected_total" && s.value >= 1.0)
        {
            return (ep, conn);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("replica 0 never counted the garbage frame");
}

/// Every PromQL query of `dashboard` with where it is and its legend
/// format: each panel target's `expr` (rows' nested panels included) and
/// each query variable's `query` and `definition`. Also checks the
/// dashboard's shape: unique panel ids, a unit on every graph, every query
/// on the `$datasource` variable.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String, String)> {
    fn panels<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().unwrap() {
            out.push(p);
            if let Some(nested) = p.get("panels") {
                panels(nested, out);
            }
        }
    }
    let str_of = |v: &Value, key: &str| v[key].as_str().unwrap_or("").to_string();
    let mut all = Vec::new();
    panels(&dashboard["panels"], &mut all);
    let mut ids = BTreeSet::new();
    let mut queries = Vec::new();
    for p in all {
        let id = p["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        if p["type"] == "row" {
            continue;
        }
        let title = str_of(p, "title");
        assert!(
            p["fieldConfig"]["defaults"]["unit"].is_string(),
            "panel {id} {title}: no unit"
        );
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {id} {title}: no targets");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "panel {id}");
            let expr = str_of(t, "expr");
            assert!(
                !expr.is_empty(),
                "panel {id} {title}: a target without expr"
            );
            let what = format!("panel {id} ({title}) {}", str_of(t, "refId"));
            queries.push((what, expr, str_of(t, "legendFormat")));
        }
    }
    let vars = dashboard["templating"]["list"].as_array().unwrap();
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no template variable {name}"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    assert_eq!(var("node")["type"], "query");
    for v in vars.iter().filter(|v| v["type"] == "query") {
        let name = str_of(v, "name");
        let query = match &v["query"] {
            Value::Object(q) => q["query"].as_str().unwrap().to_string(),
            q => q.as_str().unwrap().to_string(),
        };
        for q in [query, str_of(v, "definition")] {
            if !q.is_empty() {
                queries.push((format!("variable {name}"), q, String::new()));
            }
        }
    }
    assert!(queries.len() > 10, "{queries:?}");
    queries
}

/// The `bft_` series a PromQL query names, and the label names it uses:
/// matcher names inside `{}`, `by`/`without`/`on`/`ignoring` lists, and
/// the label of Grafana's `label_values(series, label)`. Strings, range
/// durations and Grafana `$variables` are skipped.
fn promql_names(query: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    #[derive(PartialEq)]
    enum Token {
        Ident(String),
        Punct(char),
    }
    let mut tokens = Vec::new();
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                while let Some(d) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
            }
            '[' => {
                chars.by_ref().find(|&d| d == ']');
            }
            '$' if chars.next_if_eq(&'{').is_some() => {
                chars.by_ref().find(|&d| d == '}');
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == '$' => {
                let mut ident = c.to_string();
                while let Some(d) =
                    chars.next_if(|d| d.is_ascii_alphanumeric() || "_:".contains(*d))
                {
                    ident.push(d);
                }
                if c != '$' {
                    tokens.push(Token::Ident(ident));
                }
            }
            c if c.is_whitespace() => {}
            c => tokens.push(Token::Punct(c)),
        }
    }
    let (mut series, mut labels) = (BTreeSet::new(), BTreeSet::new());
    let mut braces = 0;
    let mut label_list = false;
    for (i, t) in tokens.iter().enumerate() {
        let previous = |back: usize| i.checked_sub(back).map(|j| &tokens[j]);
        match t {
            Token::Punct('{') => braces += 1,
            Token::Punct('}') => braces -= 1,
            Token::Punct(')') => label_list = false,
            Token::Punct('(') => {
                label_list = matches!(previous(1), Some(Token::Ident(w))
                    if ["by", "without", "on", "ignoring", "group_left", "group_right"].contains(&w.as_str()));
            }
            Token::Ident(name) if braces > 0 || label_list => {
                labels.insert(name.clone());
            }
            Token::Ident(name) if name.starts_with("bft_") => {
                series.insert(name.clone());
            }
            Token::Ident(name)
                if previous(1) == Some(&Token::Punct(','))
                    && matches!(previous(3), Some(Token::Punct('(')))
                    && matches!(previous(4), Some(Token::Ident(f)) if f == "label_values") =>
            {
                labels.insert(name.clone());
            }
            _ => {}
        }
    }
    (series, labels)
}

/// The labels a Grafana legend format shows (`{{kind}}`).
fn legend_labels(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|part| part.split_once("}}"))
        .map(|(label, _)| label.trim().to_string())
        .collect()
}

/// dashboards/prometheus.yml, without a YAML parser: two-space indentation,
/// `key: value` lines, a scrape interval of 1s or 2s, the /metrics path and
/// at least one `host:port` target, each a socket address.
fn check_prometheus_yml(text: &str) {
    let mut keys = BTreeMap::new();
    let mut targets = Vec::new();
    let mut in_targets = false;
    for (n, raw) in text.lines().enumerate() {
        let line = match raw.find('#') {
            Some(at) if at == 0 || raw[..at].ends_with(' ') => &raw[..at],
            _ => raw,
        }
        .trim_end();
        if line.is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        assert!(
            !line.contains('\t') && indent % 2 == 0,
            "prometheus.yml:{}: indentation: {raw}",
            n + 1
        );
        let item = line.trim_start();
        let entry = item.strip_prefix("- ").unwrap_or(item);
        if in_targets && item.starts_with("- ") && !entry.contains(": ") {
            let addr: SocketAddr = entry
                .parse()
                .unwrap_or_else(|e| panic!("prometheus.yml:{}: target {entry}: {e}", n + 1));
            targets.push(addr);
            continue;
        }
        let (key, value) = entry
            .split_once(':')
            .unwrap_or_else(|| panic!("prometheus.yml:{}: not `key: value`: {raw}", n + 1));
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "prometheus.yml:{}: key {key:?}",
            n + 1
        );
        in_targets = key == "targets";
        keys.entry(key.to_string())
            .or_insert_with(Vec::new)
            .push(value.trim().to_string());
    }
    assert!(keys.contains_key("scrape_configs"), "{keys:?}");
    assert_eq!(keys["metrics_path"], ["/metrics"]);
    assert!(
        keys["scrape_interval"]
            .iter()
            .all(|v| v == "1s" || v == "2s"),
        "{keys:?}"
    );
    assert!(!targets.is_empty(), "no targets");
    let distinct: BTreeSet<_> = targets.iter().collect();
    assert_eq!(distinct.len(), targets.len(), "a target twice: {targets:?}");
}
