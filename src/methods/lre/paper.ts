/**
 * The paper's published LRE numbers (paper-spec §4.3), for comparison in
 * notebook 03. Values were decoded from the figures' vector data (±0.01):
 * Mamba = mamba-2.8b(-slimpj), Pythia = pythia-2.8b-deduped.
 */

/** Per-relation bars: best-layer faithfulness, and the red baseline tick (the same in both panels). */
export const PAPER_RELATION_BARS: Record<string, { mamba: number; pythia: number; baseline: number }> = {
  person_native_language: { mamba: 0.915, pythia: 0.742, baseline: 0.434 },
  landmark_on_continent: { mamba: 0.829, pythia: 0.341, baseline: 0.57 },
  country_language: { mamba: 0.797, pythia: 0.504, baseline: 0.139 },
  country_capital_city: { mamba: 0.754, pythia: 0.803, baseline: 0.049 },
  person_university: { mamba: 0.705, pythia: 0.06, baseline: 0.199 },
  person_plays_pro_sport: { mamba: 0.678, pythia: 0.564, baseline: 0.205 },
  country_largest_city: { mamba: 0.663, pythia: 0.748, baseline: 0.049 },
  person_band_lead_singer: { mamba: 0.57, pythia: 0.402, baseline: 0.075 },
  person_occupation: { mamba: 0.56, pythia: 0.46, baseline: 0.205 },
  person_plays_position_in_sport: { mamba: 0.559, pythia: 0.71, baseline: 0.244 },
  city_in_country: { mamba: 0.485, pythia: 0.653, baseline: 0.073 },
  person_plays_instrument: { mamba: 0.481, pythia: 0.486, baseline: 0.306 },
  presidents_birth_year: { mamba: 0.388, pythia: 0.153, baseline: 0.269 },
  product_by_company: { mamba: 0.297, pythia: 0.302, baseline: 0.133 },
  superhero_person: { mamba: 0.277, pythia: 0.06, baseline: 0.019 },
  country_currency: { mamba: 0.272, pythia: 0.204, baseline: 0.091 },
  food_from_country: { mamba: 0.261, pythia: 0.638, baseline: 0.042 },
  company_hq: { mamba: 0.195, pythia: 0.171, baseline: 0.035 },
  star_constellation: { mamba: 0.162, pythia: 0.26, baseline: 0.077 },
  superhero_archnemesis: { mamba: 0.151, pythia: 0.076, baseline: 0.021 },
  pokemon_evolutions: { mamba: 0.119, pythia: 0.148, baseline: 0.041 },
  person_father: { mamba: 0.072, pythia: 0.091, baseline: 0.011 },
  landmark_in_country: { mamba: 0.049, pythia: 0.251, baseline: 0.038 },
  person_mother: { mamba: 0.034, pythia: 0.158, baseline: 0.014 },
  company_ceo: { mamba: 0.015, pythia: 0.02, baseline: 0.01 },
};

/** The eight relations of the layer-sweep figure, and the peak of each curve over layers. */
export const PAPER_SWEEP_PEAKS: Record<string, { mamba: { faithfulness: number; causality: number }; pythia: { faithfulness: number; causality: number } }> = {
  country_capital_city: { mamba: { faithfulness: 0.83, causality: 1.0 }, pythia: { faithfulness: 0.88, causality: 0.97 } },
  landmark_in_country: { mamba: { faithfulness: 0.77, causality: 0.77 }, pythia: { faithfulness: 0.57, causality: 0.56 } },
  person_plays_pro_sport: { mamba: { faithfulness: 0.77, causality: 0.97 }, pythia: { faithfulness: 0.93, causality: 0.89 } },
  person_occupation: { mamba: { faithfulness: 0.71, causality: 0.86 }, pythia: { faithfulness: 0.56, causality: 0.58 } },
  person_plays_instrument: { mamba: { faithfulness: 0.77, causality: 0.9 }, pythia: { faithfulness: 0.73, causality: 0.51 } },
  company_ceo: { mamba: { faithfulness: 0.03, causality: 0.3 }, pythia: { faithfulness: 0.11, causality: 0.27 } },
  star_constellation: { mamba: { faithfulness: 0.2, causality: 0.32 }, pythia: { faithfulness: 0.36, causality: 0.14 } },
  person_mother: { mamba: { faithfulness: 0.06, causality: 0.27 }, pythia: { faithfulness: 0.37, causality: 0.52 } },
};

/**
 * Where the good layer range ends in the paper's sweeps, as a fraction of depth: Mamba's curves hold up
 * to about layer 42 of 64 before collapsing; Pythia's drop sharply after layers 16–20 of 32.
 */
export const PAPER_GOOD_RANGE = { mamba: { layer: 42, of: 64 }, pythia: { from: 16, to: 20, of: 32 } };
