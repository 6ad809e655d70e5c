@patient_goals
Feature: The patient's own goals
  What the patient wants shapes the plan: when comfort comes first, postcart recommends a focus on quality
  of life; when the aim is disease control, supportive care is still offered alongside treatment.

  Rule: The patient's stated priority is respected

    @lbcl @quality_of_life_focus
    Scenario: Quality of life first
      Given a 74-year-old with large B-cell lymphoma who relapsed 5 months after axi-cel
      And the patient's priority is quality of life
      When postcart assesses the situation
      Then a focus on quality of life is recommended
      And the rationale cites Johnson 2021
      And postcart does not ask for the patient's goals

    @mm @quality_of_life_focus
    Scenario: Disease control first, with supportive care alongside
      Given a 60-year-old with multiple myeloma who relapsed 16 months after ide-cel
      And the patient's priority is disease control
      When postcart assesses the situation
      Then a focus on quality of life is to be considered
      And the rationale mentions "alongside treatment"

    @cll @quality_of_life_focus @missing_information
    Scenario: Goals not yet discussed
      Given a 68-year-old with CLL who relapsed 14 months after liso-cel
      When postcart assesses the situation
      Then postcart asks for the patient's goals
      And a focus on quality of life is to be considered

  Rule: When quality of life comes first, transplant is discussed rather than recommended

    @allogeneic_hct @quality_of_life_focus
    Scenario Outline: A fit transplant candidate who puts quality of life first
      Given a 50-year-old with <disease> who relapsed 8 months after <product>
      And CD19 is retained on re-biopsy
      And the HCT-CI is 1
      And organ function is adequate for intensive therapy
      And a matched unrelated donor is available
      And the patient's priority is <goal>
      And salvage therapy since the CAR-T has given a complete response
      When postcart assesses the situation
      Then postcart classes the candidate for allogeneic transplant as fit
      And allogeneic transplant is <transplant>

      @lbcl
      Examples: Large B-cell lymphoma
        | disease                | product  | goal            | transplant       |
        | large B-cell lymphoma  | axi-cel  | disease control | recommended      |
        | large B-cell lymphoma  | axi-cel  | quality of life | to be considered |

      @b_all
      Examples: B-cell acute lymphoblastic leukemia
        | disease | product  | goal            | transplant       |
        | B-ALL   | tisa-cel | disease control | recommended      |
        | B-ALL   | tisa-cel | quality of life | to be considered |
