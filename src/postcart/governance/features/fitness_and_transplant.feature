@fitness
Feature: Fitness and transplant eligibility
  Fitness for allogeneic transplant is judged from ECOG, HCT-CI, organ function and age in three bands:
  fit = ECOG 0-1, HCT-CI 0-2, adequate organ function and age 70 or less; borderline = ECOG 2, HCT-CI 3-4
  or age 71-75 (the rest known and not unfit); unfit = ECOG 3-4, HCT-CI 5 or more, inadequate organ
  function or age over 75 (HCT-CI 3 or more is the higher-risk group in Sorror 2015; the age limits and
  the 5 cut are project conventions). Every band has a transplant verdict. Poor performance status or an
  active infection closes intensive options.

  Rule: Transplant fitness is judged from comorbidity, organ function and age

    @lbcl @allogeneic_hct @threshold
    Scenario Outline: Comorbidity index at the fit and unfit thresholds
      Given a 55-year-old with large B-cell lymphoma who relapsed 8 months after axi-cel
      And the HCT-CI is <hct_ci>
      And organ function is adequate for intensive therapy
      And a matched unrelated donor is available
      And salvage therapy since the CAR-T has given a complete response
      When postcart assesses the situation
      Then postcart classes the fitness for allogeneic transplant as <fitness>
      And postcart finds an allogeneic donor available
      And allogeneic transplant is <verdict>

      Examples:
        | hct_ci | fitness    | verdict     |
        | 2      | fit        | recommended |
        | 3      | borderline | to be considered |
        | 4      | borderline | to be considered |
        | 5      | unfit      | not advised |

    @lbcl @allogeneic_hct @threshold
    Scenario Outline: Age at the transplant limits
      Given a <age>-year-old with large B-cell lymphoma who relapsed 8 months after axi-cel
      And the HCT-CI is 1
      And organ function is adequate for intensive therapy
      And a matched unrelated donor is available
      And salvage therapy since the CAR-T has given a complete response
      When postcart assesses the situation
      Then postcart classes the fitness for allogeneic transplant as <fitness>
      And allogeneic transplant is <verdict>

      Examples:
        | age | fitness    | verdict     |
        | 70  | fit        | recommended |
        | 72  | borderline | to be considered |
        | 76  | unfit      | not advised |

    @b_all @allogeneic_hct
    Scenario: Borderline fitness at ECOG 2 with a donor
      Given a 45-year-old with B-ALL who relapsed 8 months after tisa-cel
      And ECOG performance status is 2
      And the HCT-CI is 1
      And organ function is adequate for intensive therapy
      And a matched related donor is available
      When postcart assesses the situation
      Then postcart classes the fitness for allogeneic transplant as borderline
      And postcart classes the candidate for allogeneic transplant as borderline
      And allogeneic transplant is to be considered
      And the rationale mentions "reduced-intensity conditioning"
      And the rationale cites Sorror 2015

    @lbcl @allogeneic_hct
    Scenario: Organ function not yet assessed in a fit patient with a donor
      Given a 62-year-old with large B-cell lymphoma who relapsed 9 months after axi-cel
      And the HCT-CI is 1
      And a matched related donor is available
      When postcart assesses the situation
      Then postcart classes the fitness for allogeneic transplant as uncertain
      And allogeneic transplant is to be considered
      And the rationale mentions "pending organ-function assessment"
      And postcart asks for organ function

    @cll @allogeneic_hct
    Scenario: Inadequate organ function
      Given a 60-year-old with CLL who relapsed 8 months after liso-cel
      And organ function is inadequate for intensive therapy
      And a matched unrelated donor is available
      When postcart assesses the situation
      Then postcart classes the fitness for allogeneic transplant as unfit
      And allogeneic transplant is not advised

  Rule: Poor performance status closes intensive options and brings comfort forward

    @fl @second_car_t_infusion @alternate_target_car_t @allogeneic_hct @clinical_trial @quality_of_life_focus
    Scenario: ECOG 3 after follicular lymphoma relapse
      Given a 74-year-old with follicular lymphoma who relapsed 10 months after axi-cel
      And CD19 is retained on re-biopsy
      And ECOG performance status is 3
      When postcart assesses the situation
      Then a second CAR-T infusion is not advised
      And a CAR-T against another target is not advised
      And allogeneic transplant is not advised
      And a clinical trial is not advised
      And a focus on quality of life is recommended
      And the rationale cites Johnson 2021

  Rule: An active uncontrolled infection must be controlled before any immune or cellular therapy

    @mcl @allogeneic_hct @second_car_t_infusion @bispecific_antibody @alternate_target_car_t
    Scenario: Active infection at relapse
      Given a 56-year-old with mantle cell lymphoma who relapsed 9 months after brexu-cel
      And CD19 is lost on re-biopsy
      And there is an active uncontrolled infection
      And the HCT-CI is 0
      And organ function is adequate for intensive therapy
      And a matched related donor is available
      When postcart assesses the situation
      Then allogeneic transplant is not advised
      And a second CAR-T infusion is not advised
      And a bispecific antibody is not advised
      And a CAR-T against another target is not advised
      And the rationale cites Hayden 2022

  Rule: During an uncontrolled infection only supportive care is recommended

    @lbcl @radiotherapy @clinical_trial
    Scenario: Localized relapse with an uncontrolled infection and a trial open
      Given a 62-year-old with large B-cell lymphoma who relapsed 10 months after liso-cel
      And the relapse is localized to a single site
      And there is an active uncontrolled infection
      And a suitable clinical trial is available
      When postcart assesses the situation
      Then radiotherapy is to be considered
      And a clinical trial is not advised
      And a bispecific antibody is not advised

  Rule: ECOG 3 caused by the disease is not an absolute bar to a bispecific

    @lbcl @bispecific_antibody
    Scenario: ECOG 3 from bulky relapsing lymphoma
      Given a 59-year-old with large B-cell lymphoma who relapsed 4 months after axi-cel
      And CD20 is positive on the failure biopsy
      And ECOG performance status is 3
      And the poor performance status is caused by the disease itself
      When postcart assesses the situation
      Then a bispecific antibody is to be considered
      And the rationale mentions "extrapolated"
      And a second CAR-T infusion is not advised
