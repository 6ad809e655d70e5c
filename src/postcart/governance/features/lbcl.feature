@lbcl
Feature: Large B-cell lymphoma after CD19 CAR-T failure
  What postcart suggests when large B-cell lymphoma relapses or progresses after a CD19-directed CAR-T
  (axi-cel, tisa-cel, liso-cel). Unless a scenario says otherwise the patient has ECOG 1, no infection,
  no CNS disease, and everything else (biopsy results, donor, trial access, goals) is not yet known.

  Rule: A CD20xCD3 bispecific antibody is the standard option when CD20 is not lost

    @bispecific_antibody @long_term_follow_up
    Scenario: Late relapse with CD19 and CD20 retained
      Given a 58-year-old with large B-cell lymphoma who relapsed 11 months after axi-cel
      And CD19 is retained on re-biopsy
      And CD20 is positive on the failure biopsy
      When postcart assesses the situation
      Then a bispecific antibody is recommended
      And the rationale cites Cartron 2025
      And the rationale mentions "CD20"
      And postcart finds no poor prognosis after CAR-T failure
      And long-term follow-up is recommended
      And the rationale cites FDA 2024 boxed warning

    @bispecific_antibody @clinical_trial
    Scenario: CD20 lost on the failure biopsy
      Given a 61-year-old with large B-cell lymphoma who relapsed 5 months after liso-cel
      And CD20 is negative on re-biopsy
      And a suitable clinical trial is available
      When postcart assesses the situation
      Then a bispecific antibody is not advised
      And the rationale cites Cartron 2025
      And a clinical trial is recommended

    @bispecific_antibody @clinical_trial
    Scenario: Relapse after a CD20xCD3 bispecific antibody already given
      Given a 67-year-old with large B-cell lymphoma who relapsed 8 months after axi-cel
      And she has already received glofitamab
      And CD20 is positive on the failure biopsy
      And a suitable clinical trial is available
      When postcart assesses the situation
      Then a bispecific antibody is to be considered
      And a clinical trial is recommended

    @bispecific_antibody @clinical_trial
    Scenario: Relapse in the central nervous system
      Given a 55-year-old with large B-cell lymphoma who relapsed 6 months after axi-cel
      And the central nervous system is involved
      And a suitable clinical trial is available
      When postcart assesses the situation
      Then a bispecific antibody is to be considered
      And a clinical trial is to be considered

    @bispecific_antibody @quality_of_life_focus @threshold
    Scenario Outline: Performance status decides between a bispecific antibody and comfort
      Given a 70-year-old with large B-cell lymphoma who relapsed 9 months after tisa-cel
      And ECOG performance status is <ecog>
      When postcart assesses the situation
      Then a bispecific antibody is <bispecific>
      And a focus on quality of life is <comfort>

      Examples:
        | ecog | bispecific  | comfort          |
        | 2    | recommended | to be considered |
        | 3    | not advised | recommended      |

  Rule: Allogeneic transplant is for fit patients with a donor, and most favoured after a late failure

    @allogeneic_hct @threshold
    Scenario Outline: Fit patient with a donor, relapsing around the three-month mark
      Given a 52-year-old with large B-cell lymphoma who relapsed <months> months after axi-cel
      And the HCT-CI is 1
      And organ function is adequate for intensive therapy
      And a matched unrelated donor is available
      And salvage therapy since the CAR-T has given a complete response
      When postcart assesses the situation
      Then postcart classes the failure timing as <timing>
      And postcart classes the candidate for allogeneic transplant as fit
      And allogeneic transplant is <verdict>
      And the rationale cites Zurko 2023

      Examples:
        | months | timing | verdict          |
        | 2.9    | early  | to be considered |
        | 3.1    | late   | recommended      |

    @allogeneic_hct
    Scenario: No donor can be found
      Given a 49-year-old with large B-cell lymphoma who relapsed 10 months after axi-cel
      And the HCT-CI is 0
      And organ function is adequate for intensive therapy
      And no donor is available
      When postcart assesses the situation
      Then postcart finds no allogeneic donor available
      And allogeneic transplant is not advised
      And postcart does not ask for the donor search

    @allogeneic_hct
    Scenario: A previous allogeneic transplant
      Given a 45-year-old with large B-cell lymphoma who relapsed 7 months after liso-cel
      And he had an allogeneic transplant before
      When postcart assesses the situation
      Then allogeneic transplant is not advised
      And postcart does not ask for the donor search

  Rule: Radiotherapy treats limited-site relapse and palliates symptomatic sites

    @radiotherapy
    Scenario: Relapse localized to a single site
      Given a 63-year-old with large B-cell lymphoma who relapsed 14 months after axi-cel
      And the relapse is localized to a single site
      When postcart assesses the situation
      Then radiotherapy is recommended
      And the rationale cites Saifi 2023

    @radiotherapy @quality_of_life_focus
    Scenario: Widespread relapse in a patient who wants comfort first
      Given a 77-year-old with large B-cell lymphoma who relapsed 4 months after liso-cel
      And the disease is widespread
      And the patient's priority is quality of life
      When postcart assesses the situation
      Then radiotherapy is to be considered
      And a focus on quality of life is recommended

  Rule: Other systemic therapies remain options, chosen by what the failure biopsy shows

    @other_systemic_therapy
    Scenario: CD19 retained keeps CD19-directed antibodies on the table
      Given a 59-year-old with large B-cell lymphoma who relapsed 7 months after axi-cel
      And CD19 is retained on re-biopsy
      When postcart assesses the situation
      Then other systemic therapy is to be considered
      And the rationale cites Caimi 2024

    @other_systemic_therapy
    Scenario: CAR-T cells still circulating at progression
      Given a 62-year-old with large B-cell lymphoma refractory to axi-cel, progressing 2 months after infusion
      And CAR-T cells are still detectable
      When postcart assesses the situation
      Then other systemic therapy is to be considered
      And the rationale cites Ghobadi 2024

  Rule: Very early failure carries a poor prognosis and brings trials and comfort forward

    @clinical_trial @quality_of_life_focus
    Scenario: Refractory disease progressing within the first month
      Given a 64-year-old with large B-cell lymphoma refractory to axi-cel, progressing 0.8 months after infusion
      And a suitable clinical trial is available
      When postcart assesses the situation
      Then postcart classes the failure timing as very early
      And postcart finds a poor prognosis after CAR-T failure
      And a clinical trial is recommended
      And the rationale cites Ghobadi 2024
      And a focus on quality of life is to be considered
      And a second CAR-T infusion is not advised

    @quality_of_life_focus
    Scenario: Very early failure in a patient who is already limited in activity
      Given a 71-year-old with large B-cell lymphoma refractory to liso-cel, progressing 1 month after infusion
      And ECOG performance status is 2
      When postcart assesses the situation
      Then a focus on quality of life is recommended

  Rule: Not fit for transplant: polatuzumab with R-GemOx is an option beside the bispecific

    @other_systemic_therapy
    Scenario: A 78-year-old relapsing after liso-cel
      Given a 78-year-old with large B-cell lymphoma who relapsed 9 months after liso-cel
      And CD20 is positive on the failure biopsy
      When postcart assesses the situation
      Then other systemic therapy is to be considered
      And the rationale cites Matasar 2025 (POLARGO)
      And the rationale mentions "extrapolated"


  Rule: A CNS relapse gets CNS-directed therapy, and where in the CNS it is decides which

    @radiotherapy
    Scenario: CNS relapse, site not yet worked up
      Given a 66-year-old with large B-cell lymphoma who relapsed 5 months after liso-cel
      And the central nervous system is involved
      When postcart assesses the situation
      Then radiotherapy is to be considered
      And the rationale cites Peñalver 2017
      And postcart asks for the CNS site

    @radiotherapy
    Scenario: Leptomeningeal relapse, site known
      Given a 58-year-old with large B-cell lymphoma who relapsed 4 months after axi-cel
      And the CNS disease is leptomeningeal
      When postcart assesses the situation
      Then radiotherapy is to be considered
      And postcart does not ask for the CNS site
