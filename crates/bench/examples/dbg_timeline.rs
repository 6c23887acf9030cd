use bft_sim::Simulation;
use bftbench::scenario::Scenario;
use std::path::Path;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let step: u64 = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(250);
    let until: u64 = std::env::args()
        .nth(3)
        .map(|s| s.parse().unwrap())
        .unwrap_or(10000);
    let s = Scenario::load(Path::new(&path), &bftbench::scenario::Overrides::default()).unwrap();
    let mut sim = Simulation::<bft_hotstuff::HotStuff>::new(
        bftbench::run::sim_config(&s),
        s.hotstuff.clone(),
    )
    .unwrap();
    let mut t = 0;
    while t <= until {
        sim.run_until(bft_core::Time::from_duration(
            std::time::Duration::from_millis(t),
        ));
        let line: Vec<String> = (0..s.nodes)
            .map(|i| {
                let n = sim.node(bft_core::NodeId(i as u16));
                let p = n.protocol();
                let st = n.status();
                format!(
                    "n{i}: v{} c{} hqc{} lvv{} lock{}",
                    st.view,
                    st.committed,
                    p.high_qc().view.0,
                    p.safety_state().last_voted_view.0,
                    p.safety_state().locked.view.0
                )
            })
            .collect();
        println!("{t:>6}ms {}", line.join(" | "));
        t += step;
    }
}
