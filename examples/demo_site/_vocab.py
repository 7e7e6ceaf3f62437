# ruff: noqa: E501  (sentence data reads better unwrapped)
"""Vocabulary of the generated demo site: topics, their focus areas, and sentence parts.

All text here is written for this project (no third-party content). Sentences are assembled
from a subject and a predicate of the same focus area, so every article is on-topic by
construction and the generator knows which pages a good researcher would cite.
"""

from __future__ import annotations

TOPICS: dict[str, dict[str, object]] = {
    "quantum-computing": {
        "title": "Quantum computing",
        "areas": {
            "algorithms": {
                "subjects": [
                    "Shor's factoring algorithm",
                    "Grover's search algorithm",
                    "The variational quantum eigensolver",
                    "Quantum phase estimation",
                    "The quantum approximate optimization algorithm",
                    "Quantum walk algorithms",
                ],
                "predicates": [
                    "offers an exponential speedup for factoring large integers on a fault-tolerant quantum computer",
                    "needs far fewer logical qubits than earlier estimates suggested, according to new resource counts",
                    "was run on a 127-qubit processor to estimate ground-state energies of small molecules",
                    "remains sensitive to noise, so quantum algorithms researchers pair it with classical optimisers",
                    "gives a quadratic speedup for unstructured search problems",
                    "is a building block of many quantum algorithms for chemistry and materials",
                    "was benchmarked against classical heuristics on combinatorial optimisation problems",
                ],
            },
            "hardware": {
                "subjects": [
                    "Superconducting transmon qubits",
                    "Trapped-ion quantum processors",
                    "Neutral-atom arrays",
                    "Photonic quantum chips",
                    "Spin qubits in silicon",
                ],
                "predicates": [
                    "reached two-qubit gate fidelities above 99.9 percent in recent quantum hardware experiments",
                    "must be cooled to a few millikelvin in a dilution refrigerator",
                    "scale by adding qubits on a chip, but wiring and crosstalk limit the quantum hardware",
                    "keep coherence times of seconds, far longer than most competing qubit hardware",
                    "were arranged into arrays of more than a thousand qubits with optical tweezers",
                    "can be fabricated in existing semiconductor foundries, a key advantage for quantum hardware",
                ],
            },
            "error-correction": {
                "subjects": [
                    "The surface code",
                    "Logical qubits",
                    "Quantum error correction",
                    "Bosonic cat codes",
                    "Low-density parity-check quantum codes",
                ],
                "predicates": [
                    "protects quantum information by spreading it across many physical qubits",
                    "showed error rates that fall as the code distance grows, a milestone for error correction",
                    "require fast classical decoders that keep pace with syndrome measurements",
                    "could cut the overhead of fault-tolerant quantum computing by an order of magnitude",
                    "are needed before quantum computers can run long algorithms reliably",
                ],
            },
            "applications": {
                "subjects": [
                    "Quantum chemistry simulation",
                    "Quantum machine learning",
                    "Post-quantum cryptography",
                    "Quantum sensing",
                    "Quantum finance models",
                ],
                "predicates": [
                    "is widely expected to be the first useful application of quantum computers",
                    "has yet to show a clear advantage over classical methods on practical datasets",
                    "is being standardised so that encrypted data stays safe once quantum computers arrive",
                    "already delivers measurements beyond classical precision limits",
                    "attracts investment from banks that hope quantum computing will speed up risk analysis",
                ],
            },
        },
    },
    "climate-science": {
        "title": "Climate science",
        "areas": {
            "sea-level": {
                "subjects": [
                    "Global mean sea level",
                    "Melting of the Greenland ice sheet",
                    "Thermal expansion of seawater",
                    "Antarctic ice shelves",
                    "Coastal flooding",
                ],
                "predicates": [
                    "rose by more than 20 centimetres since 1900, and sea level rise is accelerating",
                    "adds hundreds of billions of tonnes of water to the oceans every year",
                    "accounts for roughly a third of observed sea level rise",
                    "are thinning as warmer ocean water reaches their undersides",
                    "is becoming more frequent in low-lying cities as sea levels climb",
                ],
            },
            "carbon-capture": {
                "subjects": [
                    "Direct air capture plants",
                    "Carbon capture at cement works",
                    "Enhanced rock weathering",
                    "Geological carbon storage",
                    "Reforestation projects",
                ],
                "predicates": [
                    "remove carbon dioxide from the atmosphere but still cost hundreds of dollars per tonne",
                    "could cut industrial emissions that are hard to eliminate otherwise",
                    "locks carbon away by spreading crushed basalt on farmland",
                    "keeps captured carbon dioxide underground in depleted reservoirs for millennia",
                    "store carbon in biomass, although fires and drought can release it again",
                ],
            },
            "climate-models": {
                "subjects": [
                    "Earth system models",
                    "High-resolution climate models",
                    "Climate sensitivity estimates",
                    "Regional climate projections",
                    "Ensembles of climate simulations",
                ],
                "predicates": [
                    "couple the atmosphere, oceans, ice and the carbon cycle in one simulation",
                    "resolve storms and clouds that coarser climate models must approximate",
                    "now put the warming from doubled carbon dioxide between 2.5 and 4 degrees",
                    "help cities plan for heat and rainfall changes decades ahead",
                    "quantify uncertainty by running a climate model many times with varied inputs",
                ],
            },
            "extreme-weather": {
                "subjects": [
                    "Heatwaves",
                    "Extreme rainfall events",
                    "Tropical cyclones",
                    "Droughts",
                    "Wildfire seasons",
                ],
                "predicates": [
                    "have become more intense and more frequent as the climate warms",
                    "deliver more water because warmer air holds about seven percent more moisture per degree",
                    "are intensifying faster, according to attribution studies of extreme weather",
                    "last longer in many regions, straining water supplies and harvests",
                    "are starting earlier and ending later in western North America",
                ],
            },
        },
    },
    "machine-learning": {
        "title": "Machine learning",
        "areas": {
            "language-models": {
                "subjects": [
                    "Large language models",
                    "Transformer architectures",
                    "Instruction-tuned models",
                    "Retrieval-augmented generation",
                    "Small open language models",
                ],
                "predicates": [
                    "learn statistical patterns of text from trillions of tokens",
                    "rely on attention layers that relate every token to every other token",
                    "follow natural-language instructions after fine-tuning on human feedback",
                    "reduce hallucinations by grounding answers in retrieved documents",
                    "now match much larger language models on many benchmarks",
                ],
            },
            "computer-vision": {
                "subjects": [
                    "Convolutional neural networks",
                    "Vision transformers",
                    "Image segmentation models",
                    "Self-supervised vision models",
                    "Object detectors",
                ],
                "predicates": [
                    "classify images by learning hierarchies of visual features",
                    "split an image into patches and process them like words in a sentence",
                    "label every pixel, which matters for medical imaging and self-driving cars",
                    "learn useful visual representations without human-labelled data",
                    "locate and label many objects in a single camera frame in real time",
                ],
            },
            "reinforcement-learning": {
                "subjects": [
                    "Deep reinforcement learning",
                    "Policy gradient methods",
                    "Model-based reinforcement learning",
                    "Reward modelling",
                    "Multi-agent reinforcement learning",
                ],
                "predicates": [
                    "learns behaviour by trial and error from a reward signal",
                    "beat human champions at Go, chess and complex video games",
                    "plans with a learned model of the environment to use fewer samples",
                    "turns human preferences into a reward that reinforcement learning can optimise",
                    "studies how many learning agents cooperate and compete",
                ],
            },
            "hardware": {
                "subjects": [
                    "Graphics processing units",
                    "Tensor processing units",
                    "AI accelerators",
                    "High-bandwidth memory",
                    "Neuromorphic chips",
                ],
                "predicates": [
                    "made training deep neural networks practical by running matrix multiplications in parallel",
                    "are custom chips designed for the matrix arithmetic of neural network hardware workloads",
                    "limit training speed because moving data costs more than computing on it",
                    "mimic spiking neurons to run machine learning models on very little power",
                    "are in such demand that data centres plan around their power and cooling needs",
                ],
            },
        },
    },
    "genomics": {
        "title": "Genomics",
        "areas": {
            "gene-editing": {
                "subjects": [
                    "CRISPR-Cas9",
                    "Base editing",
                    "Prime editing",
                    "Gene therapy for sickle cell disease",
                    "Off-target edits",
                ],
                "predicates": [
                    "cuts DNA at a location chosen by a short guide RNA, making gene editing routine",
                    "changes a single DNA letter without cutting both strands",
                    "can write new genetic sequences into a genome with fewer errors",
                    "became the first approved treatment built on CRISPR gene editing",
                    "remain a safety concern that gene editing trials track closely",
                ],
            },
            "sequencing": {
                "subjects": [
                    "Long-read sequencing",
                    "The cost of sequencing a human genome",
                    "Single-cell sequencing",
                    "Nanopore sequencers",
                    "Population sequencing projects",
                ],
                "predicates": [
                    "resolves repetitive regions that short reads cannot assemble",
                    "fell below a few hundred dollars, making genome sequencing a clinical test",
                    "measures which genes are active in each individual cell",
                    "read DNA as it passes through a protein pore, in the field and in real time",
                    "link genetic variants to disease across hundreds of thousands of people",
                ],
            },
            "protein-folding": {
                "subjects": [
                    "AlphaFold",
                    "Protein structure prediction",
                    "Designed proteins",
                    "Cryo-electron microscopy",
                    "Protein language models",
                ],
                "predicates": [
                    "predicts protein structures with accuracy close to experimental methods",
                    "changed structural biology by covering almost every known protein sequence",
                    "are built from scratch by computer to bind targets chosen by researchers",
                    "images frozen proteins at near-atomic resolution",
                    "learn the grammar of amino-acid sequences to guess protein function and folding",
                ],
            },
            "epidemiology": {
                "subjects": [
                    "Genomic surveillance",
                    "Wastewater sequencing",
                    "Pathogen phylogenetics",
                    "Outbreak genomics",
                    "Antimicrobial resistance tracking",
                ],
                "predicates": [
                    "tracks how viruses mutate and spread between regions",
                    "detects new variants in a community before clinical cases rise",
                    "reconstructs transmission chains from small differences between genomes",
                    "helped health agencies respond faster to epidemics",
                    "finds resistance genes moving between bacteria in hospitals",
                ],
            },
        },
    },
    "renewable-energy": {
        "title": "Renewable energy",
        "areas": {
            "solar": {
                "subjects": [
                    "Silicon solar panels",
                    "Perovskite solar cells",
                    "Tandem solar cells",
                    "Utility-scale solar farms",
                    "Rooftop solar",
                ],
                "predicates": [
                    "became the cheapest source of new electricity in most countries",
                    "reached laboratory efficiencies above 26 percent but must prove their durability",
                    "stack two materials to capture more of the solar spectrum",
                    "are being paired with batteries to deliver power after sunset",
                    "lets households generate electricity and sell the surplus to the grid",
                ],
            },
            "batteries": {
                "subjects": [
                    "Lithium-ion batteries",
                    "Sodium-ion batteries",
                    "Solid-state batteries",
                    "Grid-scale battery storage",
                    "Battery recycling",
                ],
                "predicates": [
                    "fell in price by about 90 percent over the last decade",
                    "avoid scarce lithium and cobalt at the cost of lower energy density",
                    "promise safer batteries with more range for electric vehicles",
                    "smooths the output of wind and solar plants over hours",
                    "recovers lithium, nickel and cobalt for new battery cells",
                ],
            },
            "wind": {
                "subjects": [
                    "Offshore wind farms",
                    "Floating wind turbines",
                    "Larger wind turbine blades",
                    "Onshore wind power",
                    "Wind forecasting",
                ],
                "predicates": [
                    "produce steadier power because winds at sea are stronger and more regular",
                    "open deep waters to wind energy where fixed foundations are impossible",
                    "capture more energy per turbine and cut the cost of wind power",
                    "remains one of the cheapest sources of electricity where planning allows it",
                    "helps grid operators schedule wind power a day ahead",
                ],
            },
            "grid": {
                "subjects": [
                    "High-voltage transmission lines",
                    "Smart grids",
                    "Demand response",
                    "Grid interconnection queues",
                    "Green hydrogen",
                ],
                "predicates": [
                    "carry renewable power from windy and sunny regions to cities",
                    "balance supply and demand with sensors and automated control",
                    "pays consumers to shift electricity use away from peak hours",
                    "delay new renewable projects for years in many markets",
                    "stores surplus renewable electricity as a fuel for industry",
                ],
            },
        },
    },
    "space-exploration": {
        "title": "Space exploration",
        "areas": {
            "mars": {
                "subjects": [
                    "The Perseverance rover",
                    "Mars sample return",
                    "Martian ancient lakes",
                    "The Ingenuity helicopter",
                    "Crewed missions to Mars",
                ],
                "predicates": [
                    "is collecting rock cores that may hold signs of ancient life on Mars",
                    "would bring Martian rocks to Earth for study in laboratories",
                    "left clay and carbonate minerals that record a wetter climate",
                    "proved that powered flight is possible in the thin Martian air",
                    "face radiation and life-support challenges on the long journey",
                ],
            },
            "telescopes": {
                "subjects": [
                    "The James Webb Space Telescope",
                    "Extremely large ground telescopes",
                    "Radio telescope arrays",
                    "Space telescopes for dark energy",
                    "Gravitational-wave observatories",
                ],
                "predicates": [
                    "sees the infrared light of the first galaxies that formed after the Big Bang",
                    "will collect more light than all earlier telescopes of their kind",
                    "combine many dishes into one virtual telescope the size of the Earth",
                    "map billions of galaxies to measure how the expansion of the universe changes",
                    "detect ripples in spacetime from merging black holes",
                ],
            },
            "launch-vehicles": {
                "subjects": [
                    "Reusable rocket boosters",
                    "Heavy-lift launch vehicles",
                    "Small satellite launchers",
                    "Methane-fuelled rocket engines",
                    "Launch costs",
                ],
                "predicates": [
                    "land back on pads or ships so they can fly again",
                    "can send crews and large cargo beyond low Earth orbit",
                    "give universities and start-ups dedicated rides to orbit",
                    "burn cleaner and could be refuelled with propellant made on Mars",
                    "fell sharply as reusable rockets entered service",
                ],
            },
            "exoplanets": {
                "subjects": [
                    "Transit surveys",
                    "Exoplanet atmospheres",
                    "Rocky planets in habitable zones",
                    "Radial velocity measurements",
                    "Direct imaging of exoplanets",
                ],
                "predicates": [
                    "found thousands of exoplanets by watching stars dim as planets pass in front",
                    "reveal water vapour and carbon dioxide through starlight filtered by the planet",
                    "are prime targets in the search for life beyond the solar system",
                    "weigh exoplanets by measuring how much their star wobbles",
                    "blocks starlight to photograph young giant exoplanets directly",
                ],
            },
        },
    },
}

# Neutral sentences any article may use; they carry no topic terms.
FILLER = [
    "The team published its data and code alongside the paper.",
    "Independent groups will need to reproduce the result before it is widely accepted.",
    "Funding for the work came from a mix of public grants and industry partners.",
    "Critics argue that the headline numbers hide important caveats.",
    "The researchers say the next step is a larger trial over several years.",
    "Several start-ups have been founded to commercialise the approach.",
    "Reviewers praised the careful statistics but asked for more comparisons.",
    "The findings were presented at an international conference last month.",
]
OPENERS = [
    "A new study sheds light on {subject_lower}.",
    "Researchers report fresh progress on {subject_lower}.",
    "{subject} has been in the news again this month.",
    "Here is what the latest work says about {subject_lower}.",
]
TITLE_TEMPLATES = [
    "{subject}: what the latest research shows",
    "{subject} and the changing face of {area_words}",
    "{subject} and the future of {area_words}",
    "Inside the race to improve {subject_lower}",
    "What {subject_lower} means for {topic_lower}",
    "{subject} explained",
]
AUTHORS = [
    "Ada Whitfield",
    "Rui Tanaka",
    "Marta Kowalska",
    "Samuel Osei",
    "Lena Fischer",
    "Omar Haddad",
]
