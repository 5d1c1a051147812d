//! The interaction graph of a discrete model: sites, symmetric weighted edges (CSR), a proper
//! colouring, and the colour-major layout the samplers store states in.
//!
//! Block Gibbs updates one colour class at a time: no two sites of a class are neighbours, so
//! every site of a class can be updated at once from the others' current states. The layout
//! puts each class in consecutive positions, padded to a multiple of 4, so that one 32-bit word
//! holds four states of one class and one Philox draw gives their four uniforms.

use crate::{Error, Result};

/// A periodic lattice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lattice {
    /// L1 x L2 sites, 4 neighbours (bipartite for even sides: a checkerboard).
    Square,
    /// L1 x L2 sites, 6 neighbours (the square lattice with one diagonal).
    Triangular,
    /// L1 x L2 x L3 sites, 6 neighbours.
    Cubic,
}

impl Lattice {
    pub fn name(self) -> &'static str {
        match self {
            Lattice::Square => "square",
            Lattice::Triangular => "triangular",
            Lattice::Cubic => "cubic",
        }
    }

    pub fn rank(self) -> usize {
        if self == Lattice::Cubic { 3 } else { 2 }
    }
}

/// Sites joined by symmetric couplings: site i's neighbours are
/// `neighbours[offsets[i]..offsets[i + 1]]` with couplings `couplings[..]` at the same places;
/// every edge appears once from each end.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub sites: usize,
    pub offsets: Vec<u32>,
    pub neighbours: Vec<u32>,
    pub couplings: Vec<f32>,
    /// The lattice and its sides, when the graph is one (figures draw states on it).
    pub lattice: Option<(Lattice, Vec<usize>)>,
}

/// The most sites a model may have (states are addressed by 32-bit positions, four per word).
pub const MAX_SITES: usize = 1 << 28;

impl Graph {
    /// A periodic lattice with coupling `j` on every edge; sides of at least 3 (a side of 2
    /// would join two sites twice across the boundary).
    pub fn lattice(kind: Lattice, sides: &[usize], j: f32) -> Result<Self> {
        if sides.len() != kind.rank() {
            return Err(Error::invalid(
                "lattice",
                format!("a {} lattice has {} sides, got {}", kind.name(), kind.rank(), sides.len()),
            ));
        }
        if let Some(s) = sides.iter().find(|&&s| s < 3) {
            return Err(Error::invalid("lattice", format!("side {s} is below 3 (periodic boundaries need 3 or more)")));
        }
        let sites = sides.iter().try_fold(1usize, |a, &s| a.checked_mul(s)).filter(|&n| n <= MAX_SITES);
        let Some(sites) = sites else {
            return Err(Error::invalid("lattice", format!("{sides:?} has more than {MAX_SITES} sites")));
        };
        // Neighbour offsets per site, as steps along the axes (x fastest).
        let steps: Vec<Vec<isize>> = match kind {
            Lattice::Square => vec![vec![1, 0], vec![-1, 0], vec![0, 1], vec![0, -1]],
            Lattice::Triangular => vec![vec![1, 0], vec![-1, 0], vec![0, 1], vec![0, -1], vec![1, -1], vec![-1, 1]],
            Lattice::Cubic => {
                vec![vec![1, 0, 0], vec![-1, 0, 0], vec![0, 1, 0], vec![0, -1, 0], vec![0, 0, 1], vec![0, 0, -1]]
            }
        };
        // The adjacency (neighbour and coupling per entry) lives in the graph, the samplers'
        // position-space copy and a GPU upload: planned before any of it is allocated.
        let mut plan = crate::plan::Plan::new();
        let flag =
            format!("--energy {}:{}", kind.name(), sides.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("x"));
        plan.add(flag, "the lattice's neighbour lists", &[sites as u64, steps.len() as u64], 8, 3);
        plan.check()?;
        let mut offsets = Vec::with_capacity(sites + 1);
        let mut neighbours = Vec::with_capacity(sites * steps.len());
        offsets.push(0);
        let mut coord = vec![0usize; sides.len()];
        for _ in 0..sites {
            for step in &steps {
                let mut index = 0usize;
                for axis in (0..sides.len()).rev() {
                    let c = (coord[axis] as isize + step[axis]).rem_euclid(sides[axis] as isize) as usize;
                    index = index * sides[axis] + c;
                }
                neighbours.push(index as u32);
            }
            offsets.push(neighbours.len() as u32);
            for axis in 0..sides.len() {
                coord[axis] += 1;
                if coord[axis] < sides[axis] {
                    break;
                }
                coord[axis] = 0;
            }
        }
        let couplings = vec![j; neighbours.len()];
        Ok(Graph { sites, offsets, neighbours, couplings, lattice: Some((kind, sides.to_vec())) })
    }

    /// A graph from undirected edges (i, j, J) over `sites` sites: no self-loops, no vertex out
    /// of range, no edge given twice, finite couplings. `what` names the input in errors.
    pub fn from_edges(sites: usize, edges: &[(usize, usize, f32)], what: &str) -> Result<Self> {
        if sites == 0 || sites > MAX_SITES {
            return Err(Error::invalid(what, format!("{sites} sites: need 1 to {MAX_SITES}")));
        }
        let mut adjacency: Vec<Vec<(u32, f32)>> = vec![Vec::new(); sites];
        for (k, &(i, j, c)) in edges.iter().enumerate() {
            let line = k + 1;
            if i >= sites || j >= sites {
                return Err(Error::invalid(
                    what,
                    format!("edge {line} ({i}, {j}) names a vertex out of range 0..{}", sites - 1),
                ));
            }
            if i == j {
                return Err(Error::invalid(what, format!("edge {line} is a self-loop on vertex {i}")));
            }
            if !c.is_finite() {
                return Err(Error::invalid(what, format!("edge {line} ({i}, {j}) has coupling {c}")));
            }
            if adjacency[i].iter().any(|&(n, _)| n as usize == j) {
                return Err(Error::invalid(what, format!("edge {line} ({i}, {j}) is given twice")));
            }
            adjacency[i].push((j as u32, c));
            adjacency[j].push((i as u32, c));
        }
        let mut offsets = vec![0u32];
        let (mut neighbours, mut couplings) = (Vec::new(), Vec::new());
        for list in &mut adjacency {
            list.sort_by_key(|&(n, _)| n);
            neighbours.extend(list.iter().map(|&(n, _)| n));
            couplings.extend(list.iter().map(|&(_, c)| c));
            offsets.push(neighbours.len() as u32);
        }
        Ok(Graph { sites, offsets, neighbours, couplings, lattice: None })
    }

    /// A graph from a dense symmetric coupling matrix (row-major, `sites` x `sites`) with a zero
    /// diagonal; zero entries are not edges.
    pub fn dense(sites: usize, w: &[f32], what: &str) -> Result<Self> {
        if w.len() != sites * sites {
            return Err(Error::invalid(
                what,
                format!("{} couplings for {sites} sites: need {sites} x {sites}", w.len()),
            ));
        }
        let mut edges = Vec::new();
        for i in 0..sites {
            if w[i * sites + i] != 0.0 {
                return Err(Error::invalid(
                    what,
                    format!("diagonal entry ({i}, {i}) is {}: must be 0", w[i * sites + i]),
                ));
            }
            for j in i + 1..sites {
                let (a, b) = (w[i * sites + j], w[j * sites + i]);
                if a != b {
                    return Err(Error::invalid(
                        what,
                        format!("not symmetric: ({i}, {j}) is {a} but ({j}, {i}) is {b}"),
                    ));
                }
                if a != 0.0 {
                    edges.push((i, j, a));
                }
            }
        }
        Self::from_edges(sites, &edges, what)
    }

    pub fn degree(&self, i: usize) -> usize {
        (self.offsets[i + 1] - self.offsets[i]) as usize
    }

    pub fn max_degree(&self) -> usize {
        (0..self.sites).map(|i| self.degree(i)).max().unwrap_or(0)
    }

    /// Site i's (neighbour, coupling) pairs.
    pub fn edges_of(&self, i: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        let range = self.offsets[i] as usize..self.offsets[i + 1] as usize;
        self.neighbours[range.clone()].iter().zip(&self.couplings[range]).map(|(&n, &c)| (n as usize, c))
    }

    /// The coupling shared by every edge, if there is one (and at least one edge).
    pub fn uniform_coupling(&self) -> Option<f32> {
        let first = *self.couplings.first()?;
        self.couplings.iter().all(|&c| c.to_bits() == first.to_bits()).then_some(first)
    }

    /// A proper colouring, greedy in site order (a checkerboard on even-sided square and cubic
    /// lattices): `colour[i]` is the smallest colour none of i's earlier neighbours has.
    pub fn colouring(&self) -> Vec<u32> {
        let mut colour = vec![u32::MAX; self.sites];
        let mut taken = Vec::new();
        for i in 0..self.sites {
            taken.clear();
            taken.extend(self.edges_of(i).map(|(n, _)| colour[n]).filter(|&c| c != u32::MAX));
            colour[i] = (0..).find(|c| !taken.contains(c)).unwrap_or(0);
        }
        colour
    }
}

/// Where each site's state lives: colour classes in consecutive positions, each padded to a
/// multiple of 4 so a 32-bit word holds four states of one class.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// `position[site]`.
    pub position: Vec<u32>,
    /// Per class: (first word, words, sites), in colour order.
    pub classes: Vec<(u32, u32, u32)>,
    /// Words per chain.
    pub words: usize,
}

impl Layout {
    pub fn new(colour: &[u32]) -> Self {
        let colours = colour.iter().max().map_or(0, |&c| c as usize + 1);
        let mut members = vec![Vec::new(); colours];
        for (site, &c) in colour.iter().enumerate() {
            members[c as usize].push(site);
        }
        let mut position = vec![0u32; colour.len()];
        let (mut classes, mut word) = (Vec::with_capacity(colours), 0u32);
        for list in &members {
            for (k, &site) in list.iter().enumerate() {
                position[site] = word * 4 + k as u32;
            }
            let words = list.len().div_ceil(4) as u32;
            classes.push((word, words, list.len() as u32));
            word += words;
        }
        Layout { position, classes, words: word as usize }
    }

    /// Packs per-site states (one chain after another, `sites` each) into layout words.
    pub fn pack(&self, states: &[u8]) -> Vec<u32> {
        let sites = self.position.len();
        let chains = states.len() / sites.max(1);
        let mut words = vec![0u32; chains * self.words];
        for (c, row) in states.chunks_exact(sites).enumerate() {
            for (site, &s) in row.iter().enumerate() {
                let p = self.position[site] as usize;
                words[c * self.words + p / 4] |= (s as u32) << (8 * (p % 4));
            }
        }
        words
    }

    /// Per-site states from layout words (the inverse of [`Self::pack`]).
    pub fn unpack(&self, words: &[u32]) -> Vec<u8> {
        let sites = self.position.len();
        let chains = words.len() / self.words.max(1);
        let mut states = vec![0u8; chains * sites];
        for c in 0..chains {
            for (site, &p) in self.position.iter().enumerate() {
                let p = p as usize;
                states[c * sites + site] = (words[c * self.words + p / 4] >> (8 * (p % 4))) as u8;
            }
        }
        states
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_lattice_neighbours_wrap_and_colour_as_a_checkerboard() {
        let g = Graph::lattice(Lattice::Square, &[4, 4], 1.0).unwrap();
        // Site (x=0, y=0): right (1,0)=1, left (3,0)=3, down (0,1)=4, up (0,3)=12.
        assert_eq!(g.edges_of(0).map(|(n, _)| n).collect::<Vec<_>>(), vec![1, 3, 4, 12]);
        let colour = g.colouring();
        for i in 0..16 {
            assert_eq!(colour[i], ((i % 4 + i / 4) % 2) as u32, "site {i}");
        }
        let odd = Graph::lattice(Lattice::Square, &[3, 3], 1.0).unwrap();
        let c = odd.colouring();
        for i in 0..9 {
            assert!(odd.edges_of(i).all(|(n, _)| c[n] != c[i]), "site {i} shares its colour");
        }
    }

    #[test]
    fn layout_packs_classes_into_words_and_back() {
        let g = Graph::lattice(Lattice::Triangular, &[3, 5], 1.0).unwrap();
        let colour = g.colouring();
        let layout = Layout::new(&colour);
        let states: Vec<u8> = (0..2 * 15).map(|k| (k * 7 % 5) as u8).collect();
        assert_eq!(layout.unpack(&layout.pack(&states)), states);
        for (site, &p) in layout.position.iter().enumerate() {
            let (first, words, _) = layout.classes[colour[site] as usize];
            assert!(p / 4 >= first && p / 4 < first + words);
        }
    }

    #[test]
    fn malformed_edges_are_refused_naming_the_edge() {
        let err = |e: &[(usize, usize, f32)]| Graph::from_edges(3, e, "edges").unwrap_err().to_string();
        assert!(err(&[(0, 0, 1.0)]).contains("self-loop"));
        assert!(err(&[(0, 3, 1.0)]).contains("out of range"));
        assert!(err(&[(0, 1, 1.0), (1, 0, 2.0)]).contains("given twice"));
        assert!(err(&[(0, 1, f32::NAN)]).contains("coupling"));
        assert!(Graph::lattice(Lattice::Square, &[2, 4], 1.0).is_err());
        assert!(Graph::dense(2, &[0.0, 1.0, 2.0, 0.0], "w").unwrap_err().to_string().contains("symmetric"));
    }
}
