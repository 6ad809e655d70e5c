@b_all
Feature: B-cell acute lymphoblastic leukemia after CD19 CAR-T failure
  B-ALL relapsing after tisa-cel, brexu-cel or obe-cel: what matters is whether CD19 is still on the
  blasts and whether the CAR-T cells are still there (B-cell recovery means they are gone).

  Rule: CD19-positive relapse after loss of the CAR-T cells can be re-treated against CD19

    @second_car_t_infusion @bispecific_antibody @long_term_follow_up
    Scenario: CD19-positive relapse with B-cell recovery
      Given a 24-year-old with B-cell acute lymphoblastic leukemia who relapsed 7 months after tisa-cel
      And CD19 is retained on re-biopsy
      And B-cell recovery shows the CAR-T cells have been lost
      When postcart assesses the situation
      Then a second CAR-T infusion is to be considered
      And a bispecific antibody is recommended
      And the rationale mentions "blinatumomab"
      And the rationale cites Kantarjian 2017
      And long-term follow-up is recommended
      And the rationale cites FDA 2024 boxed warning

    @second_car_t_infusion
    Scenario: CD19-positive relapse while the CAR-T cells persist
      Given a 31-year-old with B-ALL who relapsed 5 months after brexu-cel
      And CD19 is retained on re-biopsy
      And CAR-T cells are still detectable
      When postcart assesses the situation
      Then a second CAR-T infusion is not advised

    @bispecific_antibody
    Scenario: Blinatumomab was already given before CAR-T
      Given a 38-year-old with B-ALL who relapsed 9 months after obe-cel
      And CD19 is retained on re-biopsy
      And she has already received blinatumomab
      When postcart assesses the situation
      Then a bispecific antibody is to be considered
      And the rationale cites Myers 2022

    @bispecific_antibody @missing_information
    Scenario: CD19 not yet assessed on the relapse
      Given a 29-year-old with B-ALL who relapsed 6 months after tisa-cel
      When postcart assesses the situation
      Then a bispecific antibody is to be considered
      And postcart asks for a re-biopsy for CD19

  Rule: CD19-negative relapse turns to CD22

    @other_systemic_therapy @alternate_target_car_t @bispecific_antibody
    Scenario: CD19-negative relapse
      Given a 27-year-old with B-ALL who relapsed 4 months after tisa-cel
      And CD19 is lost on re-biopsy
      When postcart assesses the situation
      Then other systemic therapy is recommended
      And the rationale cites Kantarjian 2016
      And a CAR-T against another target is to be considered
      And the rationale cites Fergusson 2023
      And a bispecific antibody is not advised

    @alternate_target_car_t
    Scenario: CD19-positive relapse may still be treated with a dual-target CAR-T
      Given a 33-year-old with B-ALL who relapsed 8 months after brexu-cel
      And CD19 is retained on re-biopsy
      When postcart assesses the situation
      Then a CAR-T against another target is to be considered
      And other systemic therapy is to be considered

  Rule: Consolidation with allogeneic transplant for a fit candidate with a donor

    @allogeneic_hct
    Scenario: Fit young adult with a matched related donor
      Given a 22-year-old with B-ALL who relapsed 10 months after tisa-cel
      And CD19 is retained on re-biopsy
      And the HCT-CI is 0
      And organ function is adequate for intensive therapy
      And a matched related donor is available
      And salvage therapy since the CAR-T has given a complete response
      When postcart assesses the situation
      Then allogeneic transplant is recommended
      And the rationale cites Wudhikarn 2021

    @clinical_trial
    Scenario: Relapse within the first month with a trial available
      Given a 40-year-old with B-ALL who relapsed 0.9 months after brexu-cel
      And a suitable clinical trial is available
      When postcart assesses the situation
      Then postcart finds a poor prognosis after CAR-T failure
      And a clinical trial is recommended

    @quality_of_life_focus
    Scenario: Early relapse prompts an honest conversation about goals
      Given a 45-year-old with B-ALL who relapsed 2 months after obe-cel
      When postcart assesses the situation
      Then a focus on quality of life is to be considered
      And the reasons include "short remission"

  Rule: CD22 is checked before inotuzumab or a CD22 CAR-T

    @other_systemic_therapy @alternate_target_car_t
    Scenario: CD19-negative relapse whose blasts have also lost CD22
      Given a 31-year-old with B-ALL who relapsed 5 months after tisa-cel
      And CD19 is lost on re-biopsy
      And CD22 is negative on re-biopsy
      When postcart assesses the situation
      Then other systemic therapy is not advised
      And the rationale cites Inotuzumab review 2023
      And CAR-T against another target is not addressed

    @other_systemic_therapy
    Scenario: CD19-negative relapse, CD22 not yet checked
      Given a 40-year-old with B-ALL who relapsed 7 months after brexu-cel
      And CD19 is lost on re-biopsy
      When postcart assesses the situation
      Then other systemic therapy is recommended
      And postcart asks for the CD22 status

  Rule: A product given outside its labelled age is accepted and flagged

    @bispecific_antibody
    Scenario: A 15-year-old relapsing after brexu-cel
      Given a 15-year-old with B-ALL who relapsed 6 months after brexu-cel
      And CD19 is retained on re-biopsy
      When postcart assesses the situation
      Then postcart classes the CAR-T product used outside its labelled age as below_labelled_age
      And a bispecific antibody is recommended

    @bispecific_antibody
    Scenario: A 40-year-old relapsing after tisa-cel
      Given a 40-year-old with B-ALL who relapsed 9 months after tisa-cel
      And CD19 is retained on re-biopsy
      When postcart assesses the situation
      Then postcart classes the CAR-T product used outside its labelled age as above_labelled_age

  Rule: Transplant consolidates a remission, it does not treat overt relapse

    @allogeneic_hct
    Scenario: Fit adult with a donor, re-induction not yet given
      Given a 34-year-old with B-ALL who relapsed 8 months after brexu-cel
      And CD19 is retained on re-biopsy
      And the HCT-CI is 1
      And organ function is adequate for intensive therapy
      And a matched unrelated donor is available
      And no salvage therapy has been given yet
      When postcart assesses the situation
      Then allogeneic transplant is to be considered
      And the rationale mentions "consolidate once"

  Rule: MRD-level disease is the setting of blinatumomab, and is measured once remission returns

    @bispecific_antibody
    Scenario: MRD-positive in morphological remission, CD19 retained
      Given a 34-year-old with B-ALL who relapsed 7 months after tisa-cel
      And CD19 is retained on re-biopsy
      And measurable residual disease is positive
      When postcart assesses the situation
      Then a bispecific antibody is recommended
      And the rationale cites Gökbuget 2018

    @allogeneic_hct
    Scenario: Back in remission after salvage, MRD not yet measured
      Given a 36-year-old with B-ALL who relapsed 6 months after tisa-cel
      And CD19 is retained on re-biopsy
      And the HCT-CI is 1
      And organ function is adequate for intensive therapy
      And a matched unrelated donor is available
      And salvage therapy since the CAR-T has given a complete response
      When postcart assesses the situation
      Then allogeneic transplant is recommended
      And postcart asks for the MRD

  Rule: Philadelphia chromosome-positive relapse keeps a tyrosine kinase inhibitor in the regimen

    @other_systemic_therapy
    Scenario: Ph-positive relapse with CD19 retained
      Given a 52-year-old with B-ALL who relapsed 5 months after brexu-cel
      And CD19 is retained on re-biopsy
      And the leukemia is Philadelphia chromosome-positive
      When postcart assesses the situation
      Then other systemic therapy is to be considered
      And the rationale cites Couturier 2021

  Rule: A CNS relapse gets CNS-directed therapy, cranial radiotherapy included

    @radiotherapy
    Scenario: Leptomeningeal relapse nine months after tisa-cel
      Given a 24-year-old with B-ALL who relapsed 9 months after tisa-cel
      And CD19 is retained on re-biopsy
      And the CNS disease is leptomeningeal
      When postcart assesses the situation
      Then radiotherapy is to be considered
      And the rationale cites Kopmar 2023
      And the rationale mentions "restage the marrow"

    @radiotherapy
    Scenario: No CNS disease, no radiotherapy advice
      Given a 30-year-old with B-ALL who relapsed 8 months after tisa-cel
      And CD19 is retained on re-biopsy
      When postcart assesses the situation
      Then radiotherapy is not addressed
